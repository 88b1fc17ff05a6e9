// placeholder: being written
#include "command.h"
namespace qlake::cli {
Runner SetupProfile(CLI::App&) {
  return [](Context&) { return arrow::Status::NotImplemented("profile"); };
}
}  // namespace qlake::cli
