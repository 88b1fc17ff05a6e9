// placeholder: being written
#include "command.h"
namespace qlake::cli {
Runner SetupCalendar(CLI::App&) {
  return [](Context&) { return arrow::Status::NotImplemented("calendar"); };
}
}  // namespace qlake::cli
