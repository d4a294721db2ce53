// Where the tests find the source tree, the build tree, the sample data and
// the apps; the values are compiled in by autotest/CMakeLists.txt.
#include "asd_test_paths.h"

#include <cstdlib>
#include <string>

namespace asd_test {

std::string source_dir() { return ASD_SOURCE_DIR; }
std::string binary_dir() { return ASD_BINARY_DIR; }
std::string data_dir() { return ASD_DATA_DIR; }

std::string shared_dir() {
  // CI copies shared/ beside the clone; a developer's tree has it there too.
  const char *env = std::getenv("ASD_SHARED_DIR");
  return env ? env : ASD_SHARED_DIR;
}

}  // namespace asd_test
