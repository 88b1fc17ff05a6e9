// File: tools/cli/command.h
//
// The qlake CLI is a thin layer: one table of subcommands (commands.cc) drives both
// `--help` and dispatch, in the manner of Ninja's kTools[]. Each subcommand lives in its
// own cmd_<name>.cc and provides a Setup function that declares its flags on a CLI11
// sub-app and returns the Runner that executes it once the command line has been parsed.
// Runners call library functions and return their Status; main() maps it to an exit code
// (qlake/core/status.h) and one "qlake: error: ..." line.

#pragma once

#include <functional>
#include <span>
#include <string_view>

#include <arrow/status.h>
#include <CLI/CLI.hpp>

#include "qlake/core/config.h"
#include "qlake/core/system_profile.h"

namespace qlake::cli {

/// What every runner gets: the merged configuration (flags already applied), the machine
/// profile, and the global output switches.
struct Context {
  Config& config;
  const SystemProfile& profile;
  bool quiet = false;
  int verbosity = 0;
};

using Runner = std::function<arrow::Status(Context&)>;

struct Command {
  std::string_view name;
  std::string_view help;
  /// Declares the flags of the command on `app` and returns its runner.
  Runner (*setup)(CLI::App& app);
};

/// The subcommand table, in the order `qlake --help` lists it.
std::span<const Command> Commands();

// One Setup function per cmd_<name>.cc.
Runner SetupBackfill(CLI::App& app);
Runner SetupCalendar(CLI::App& app);
Runner SetupCatalog(CLI::App& app);
Runner SetupConfig(CLI::App& app);
Runner SetupFeatures(CLI::App& app);
Runner SetupFetch(CLI::App& app);
Runner SetupIngest(CLI::App& app);
Runner SetupInit(CLI::App& app);
Runner SetupProfile(CLI::App& app);
Runner SetupQuery(CLI::App& app);
Runner SetupQlib(CLI::App& app);
Runner SetupReport(CLI::App& app);
Runner SetupStatus(CLI::App& app);
Runner SetupSync(CLI::App& app);
Runner SetupSynth(CLI::App& app);

}  // namespace qlake::cli
