// qlake: command-line front end. Parses arguments, builds the configuration, runs one
// subcommand from the table in commands.cc and maps its Status to an exit code.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <arrow/filesystem/s3fs.h>
#include <CLI/CLI.hpp>

#include "command.h"
#include "qlake/core/config.h"
#include "qlake/core/logging.h"
#include "qlake/core/status.h"
#include "qlake/core/system_profile.h"
#include "qlake/core/version.h"

namespace qlake::cli {
namespace {

struct GlobalFlags {
  std::string config_file;
  int verbose = 0;
  bool quiet = false;
  std::string log_format;  // empty: log.format from the config
  std::vector<std::string> sets;
};

int Fail(const arrow::Status& st) {
  std::fprintf(stderr, "%s\n", FormatCliError(st).c_str());
  return static_cast<int>(ExitCodeFor(st));
}

// Applies the global --set KEY=VALUE overrides at the flag layer.
arrow::Status ApplySets(const std::vector<std::string>& sets, Config& config) {
  for (const auto& kv : sets) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return arrow::Status::Invalid(
          "--set '", kv, "': expected KEY=VALUE, e.g. --set memory.limit=4GiB");
    }
    ARROW_RETURN_NOT_OK(
        config.Set(kv.substr(0, eq), kv.substr(eq + 1), ConfigSource::kFlag, "--set"));
  }
  return arrow::Status::OK();
}

std::string LogLevelFor(const GlobalFlags& g, const Config& config) {
  if (g.quiet) return "error";
  if (g.verbose >= 2) return "trace";
  if (g.verbose == 1) return "debug";
  auto level = config.GetString("log.level");
  return level.ok() ? *level : "info";
}

int Run(int argc, char** argv) {
  CLI::App app{
      "qlake: Massive/Polygon flat files -> validated Parquet lake -> features -> Qlib",
      "qlake"};
  app.set_version_flag("--version", std::string("qlake ") + QLAKE_VERSION + " (Arrow " +
                                        QLAKE_ARROW_VERSION + ")");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand

  GlobalFlags g;
  app.add_option("--config", g.config_file,
                 "Config file (default $XDG_CONFIG_HOME/qlake/config.yaml)");
  app.add_flag("-v,--verbose", g.verbose, "More log output (-vv for trace)");
  app.add_flag("-q,--quiet", g.quiet, "Only errors; no progress output");
  app.add_option("--log-format", g.log_format, "Log line format")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--set", g.sets, "Override a config key: --set KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");

  auto commands = Commands();
  std::vector<Runner> runners;
  std::vector<CLI::App*> subs;
  for (const auto& c : commands) {
    auto* sub = app.add_subcommand(std::string(c.name), std::string(c.help));
    subs.push_back(sub);
    runners.push_back(c.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr,
                 "qlake: error: %s\nRun 'qlake --help' or 'qlake <command> --help'.\n",
                 MaskSecrets(e.what()).c_str());
    return static_cast<int>(ExitCode::kUsage);
  }

  // Logging first (with flag-only settings) so config loading can log.
  LoggingOptions log_opts;
  log_opts.format = g.log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  log_opts.level =
      g.quiet ? "error" : (g.verbose ? (g.verbose >= 2 ? "trace" : "debug") : "info");
  if (auto st = InitLogging(log_opts); !st.ok()) return Fail(st);

  auto profile = ProbeSystem();
  if (!profile.ok()) return Fail(profile.status());

  ConfigLoadOptions load;
  if (!g.config_file.empty()) load.file = g.config_file;
  load.profile = *profile;
  auto config = Config::Load(load);
  if (!config.ok()) return Fail(config.status());
  if (auto st = ApplySets(g.sets, *config); !st.ok()) return Fail(st);
  if (auto st = config->ApplyModeDefaults(profile->usable_cores); !st.ok())
    return Fail(st);

  log_opts.level = LogLevelFor(g, *config);
  if (g.log_format.empty()) {
    auto fmt = config->GetString("log.format");
    if (fmt.ok() && *fmt == "json") log_opts.format = LogFormat::kJson;
  }
  if (auto st = InitLogging(log_opts); !st.ok()) return Fail(st);

  for (const auto& [key, entry] : config->entries()) {
    spdlog::debug("config {} = {} ({} {})", key, Config::ValueToText(entry),
                  ConfigSourceName(entry.source), entry.origin);
  }

  Context ctx{*config, *profile, g.quiet, g.verbose};
  for (std::size_t i = 0; i < subs.size(); ++i) {
    if (subs[i]->parsed()) {
      auto st = runners[i](ctx);
      spdlog::default_logger()->flush();
      if (!st.ok()) return Fail(st);
      return 0;
    }
  }
  return static_cast<int>(ExitCode::kUsage);
}

}  // namespace
}  // namespace qlake::cli

int main(int argc, char** argv) {
  int code = qlake::cli::Run(argc, argv);
  // An s3:// source or lake initializes Arrow's S3 subsystem on first use; it must be
  // shut down explicitly after every S3 object is gone, never from an atexit handler
  // (shared/docs/arrow-cpp.md section 1.6). A no-op when S3 was not used.
  if (auto st = arrow::fs::EnsureS3Finalized(); !st.ok()) {
    std::fprintf(stderr, "qlake: warning: %s\n", st.ToString().c_str());
  }
  return code;
}
