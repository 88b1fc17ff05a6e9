#include <iostream>

#include "command.h"

namespace qlake::cli {

Runner SetupConfig(CLI::App& app) {
  auto* show = app.add_subcommand(
      "show", "Print the merged configuration with the source of each value");
  auto json = std::make_shared<bool>(false);
  show->add_flag("--json", *json, "Print JSON instead of text");
  app.require_subcommand(1);
  return [json](Context& ctx) {
    std::cout << (*json ? ctx.config.ShowJson() : ctx.config.ShowText());
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli
