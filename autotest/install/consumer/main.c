/* Links against the installed library and checks a digest and the version,
 * so that a broken install (missing header, missing symbol, wrong include
 * path) fails here. */
#include <stdio.h>
#include <string.h>

#include <asyncdetect/asd_common.h>

int main(void) {
  char hex[65];
  asd_sha256_hex("abc", 3, hex);
  if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) return 1;
  printf("asyncdetect %s\n", asd_version());
  return 0;
}
