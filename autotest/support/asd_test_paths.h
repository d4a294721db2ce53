// Paths shared by every test: compiled in, overridable where noted.
#ifndef ASD_TEST_PATHS_H
#define ASD_TEST_PATHS_H

#include <string>

namespace asd_test {
std::string source_dir();
std::string binary_dir();
std::string data_dir();
std::string shared_dir();  // ../shared beside the clone, or $ASD_SHARED_DIR
}  // namespace asd_test

#endif
