// placeholder: being written
#include "command.h"
namespace qlake::cli {
Runner SetupSynth(CLI::App&) {
  return [](Context&) { return arrow::Status::NotImplemented("synth"); };
}
}  // namespace qlake::cli
