// File: qlake/core/config.h
//
// qlake's configuration: a fixed schema of dotted keys (`ingest.row_group_rows`), each
// with a type, a default, a range and a one-line help, filled in layers where each layer
// overrides the one before:
//
//   1. defaults          (the schema table in config.cc)
//   2. system profile    (values derived from the machine: memory.limit, fetch.jobs, ...)
//   3. user file         (--config FILE, else $XDG_CONFIG_HOME/qlake/config.yaml, else
//                         ~/.config/qlake/config.yaml; YAML, nested maps or dotted keys)
//   4. environment       (QLAKE_<SECTION>__<KEY>=value, e.g.
//   QLAKE_INGEST__ROW_GROUP_ROWS)
//   5. command line      (a command's own flags, and the global --set KEY=VALUE)
//
// Every value remembers where it came from (file:line, variable name, flag), which
// `qlake config show` prints. Unknown keys, wrong types and out-of-range values are
// Invalid errors that name the key and the file:line or variable. Secret keys
// (s3.secret_access_key,
// ...) are never printed: they are masked in `config show` and registered with the
// logging module so that no log line, error or report contains them; they may not be set
// in a config file (DESIGN.md: secrets come from the environment or a credentials file).
//
// Thread safety: a Config is a value; const access is safe from many threads.

#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/system_profile.h"

namespace qlake {

enum class ConfigType { kBool, kInt, kDouble, kString, kBytes, kEnum };
enum class ConfigSource { kDefault, kProfile, kFile, kEnv, kFlag };
std::string_view ConfigSourceName(ConfigSource s);  // "default", "profile", ...

/// One row of the schema.
struct ConfigKeySpec {
  std::string_view key;  // "ingest.row_group_rows"
  ConfigType type;
  std::string_view default_value;  // as text, parsed like any other layer
  std::string_view help;
  double min = 0;                 // for kInt, kDouble, kBytes (inclusive)
  double max = 0;                 // 0 = no upper bound
  std::string_view choices = {};  // for kEnum: "a|b|c"
  bool secret = false;
};

/// The full schema, sorted by key.
const std::vector<ConfigKeySpec>& ConfigSchema();

using ConfigValue = std::variant<bool, int64_t, double, std::string>;

struct ConfigEntry {
  const ConfigKeySpec* spec = nullptr;
  ConfigValue value;
  ConfigSource source = ConfigSource::kDefault;
  std::string
      origin;  // "config.yaml:12", "QLAKE_MEMORY__LIMIT", "--set", "" for defaults
};

/// Where the layers come from. Load() with default options reads the real user file and
/// the process environment.
struct ConfigLoadOptions {
  /// Explicit --config FILE; when set, the file must exist.
  std::optional<std::string> file;
  /// When no explicit file: look up $XDG_CONFIG_HOME/qlake/config.yaml (optional file).
  bool use_default_file = true;
  /// The environment as NAME=VALUE strings; nullopt = the process environment.
  std::optional<std::vector<std::string>> environment;
  /// Machine profile for the profile layer; nullopt = no profile layer.
  std::optional<SystemProfile> profile;
};

class Config {
 public:
  /// Builds the layered configuration. Errors name the key and file:line / variable.
  static arrow::Result<Config> Load(const ConfigLoadOptions& options);
  /// Only defaults (and the profile layer if given): for tests and library users.
  static Config Defaults(const std::optional<SystemProfile>& profile = std::nullopt);

  /// Sets `key` from text at the given layer (used for flags and --set KEY=VALUE).
  /// A lower layer never overrides a higher one that is already set.
  arrow::Status Set(std::string_view key, std::string_view text, ConfigSource source,
                    std::string_view origin);

  /// Re-derives the mode-dependent keys (ingest.row_group_rows, ingest.compression,
  /// ingest.parallel_files) from system.mode when it names a mode ("auto" keeps the
  /// profile's choice). They are set at the profile layer, so values the user set in a
  /// file, the environment or a flag still win. Load() calls it; call it again after
  /// changing system.mode.
  arrow::Status ApplyModeDefaults(int cores);

  /// Typed getters. The key must exist in the schema and have that type (a programming
  /// error otherwise, reported as Invalid rather than a crash).
  arrow::Result<bool> GetBool(std::string_view key) const;
  arrow::Result<int64_t> GetInt(std::string_view key) const;  // kInt and kBytes
  arrow::Result<double> GetDouble(std::string_view key) const;
  arrow::Result<std::string> GetString(std::string_view key) const;  // kString, kEnum

  /// Entry for `key`, or KeyError.
  arrow::Result<const ConfigEntry*> Find(std::string_view key) const;
  const std::map<std::string, ConfigEntry, std::less<>>& entries() const {
    return entries_;
  }

  /// The merged configuration as text (one "key = value  # source origin" line per key)
  /// or as JSON ({"key": {"value": ..., "source": ..., "origin": ...}}). Secrets are
  /// masked.
  std::string ShowText() const;
  std::string ShowJson() const;

  /// Text form of a value as `config show` prints it (masked when secret).
  static std::string ValueToText(const ConfigEntry& entry, bool mask_secrets = true);

 private:
  std::map<std::string, ConfigEntry, std::less<>> entries_;
};

/// The config values a processing mode implies (DESIGN.md section 1: snappy and 50K-row
/// row groups when streaming, zstd and 100K in batch, zstd and 1M in parallel mode).
std::vector<std::pair<std::string_view, std::string>> ModeConfigValues(
    ProcessingMode mode, int cores);

/// Parses a byte size: "512MiB", "2GiB", "1.5G", "1000000", "80%" is not accepted here.
/// Units: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (all binary, 1024-based).
arrow::Result<int64_t> ParseBytes(std::string_view text);

}  // namespace qlake
