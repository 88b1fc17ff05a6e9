#include "qlake/core/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "qlake/core/logging.h"

extern char** environ;

namespace qlake {

namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

// The schema. Keep sorted by key (a static_assert-like check runs in ConfigSchema()).
// Defaults are text, parsed like every other layer, so a bad default fails the tests.
std::vector<ConfigKeySpec> BuildSchema() {
  using T = ConfigType;
  return {
      {"features.liquid_dollar_volume", T::kDouble, "1000000",
       "alpha_daily/alpha_minute: a symbol is liquid when its dollar volume of the day "
       "(close x volume) is at least this",
       0, 0},
      {"features.parallel_days", T::kInt, "2",
       "qlake features: threads, each computing a contiguous chunk of the days", 1, 256},
      {"features.relative_volume_min_periods", T::kInt, "10",
       "relative_volume is NaN until this many of the window's days (bars) have a bar", 1,
       250},
      {"features.relative_volume_window", T::kInt, "20",
       "relative_volume: trading days (options_minute: bars) averaged", 1, 250},
      {"features.velocity_bars", T::kInt, "5", "price_velocity: compare with k bars back",
       1, 1000},
      {"fetch.jobs", T::kInt, "8", "Concurrent S3 downloads (profile: min(8, 4 x cores))",
       1, 256},
      {"fetch.backoff_max_ms", T::kInt, "30000",
       "Longest wait between two attempts of a download", 1, 3600000},
      {"fetch.backoff_ms", T::kInt, "500",
       "First wait between two attempts of a download; doubles per attempt, with "
       "jitter",
       1, 600000},
      {"fetch.cache", T::kString, "./flatfiles",
       "Local cache of downloaded flat files, in the bucket's key layout"},
      {"fetch.chunk_bytes", T::kBytes, "8MiB",
       "Bytes per ranged GET of a download (memory: fetch.jobs x this)", 64.0 * 1024,
       1024.0 * 1024 * 1024},
      {"fetch.forbidden_retries", T::kInt, "3",
       "Attempts on HTTP 403 (sometimes transient) before reporting an entitlement error",
       1, 100},
      {"fetch.retries", T::kInt, "5", "Attempts per object before giving up", 1, 100},
      {"fetch.verify_gzip", T::kBool, "true",
       "Decompress every download once to check its gzip CRCs before it is kept"},
      {"ingest.chunk_rows", T::kInt, "250000",
       "Rows held in memory before they are written (streaming); 0 = whole day "
       "(profile: 250K streaming, 500K batch, 0 parallel)",
       0, 1e9},
      {"ingest.compression", T::kEnum, "zstd",
       "Parquet codec (profile: snappy in streaming mode, zstd otherwise)", 0, 0,
       "snappy|zstd|lz4|none"},
      {"ingest.compression_level", T::kInt, "3", "Codec level (zstd 1-22)", 1, 22},
      {"ingest.parallel_files", T::kInt, "1",
       "Days ingested at once (profile: 1 streaming, 2 batch, cores/2 parallel)", 1, 256},
      {"ingest.row_group_rows", T::kInt, "100000",
       "Rows per Parquet row group (profile: 50K streaming, 100K batch, 1M parallel)",
       1000, 100000000},
      {"lake.root", T::kString, "./lake",
       "Lake root: a local folder or s3://bucket/prefix"},
      {"log.format", T::kEnum, "text", "Log line format", 0, 0, "text|json"},
      {"log.level", T::kEnum, "info", "Log level", 0, 0,
       "trace|debug|info|warn|error|critical|off"},
      {"memory.act_fraction", T::kDouble, "0.85",
       "Share of memory.limit at which the monitor shrinks, flushes and trims", 0.05, 1},
      {"memory.limit", T::kBytes, "4GiB",
       "Memory budget for one run (profile: 80% of usable memory, cgroup limits "
       "included)",
       64.0 * 1024 * 1024, 0},
      {"memory.sample_interval_ms", T::kInt, "100", "Memory monitor sampling period", 10,
       60000},
      {"memory.warn_fraction", T::kDouble, "0.75",
       "Share of memory.limit at which the monitor warns and asks consumers to shrink",
       0.05, 1},
      {"query.cache_bytes", T::kBytes, "512MiB",
       "Decoded column-chunk cache (profile: min(2 GiB, memory.limit / 4))", 0, 0},
      {"s3.access_key_id",
       T::kString,
       "",
       "S3 access key id (flat-file key, not the REST key)",
       0,
       0,
       {},
       /*secret=*/true},
      {"s3.bucket", T::kString, "flatfiles", "Bucket of the flat files"},
      {"s3.endpoint", T::kString, "https://files.massive.com",
       "S3 endpoint (path-style)"},
      {"s3.connect_timeout", T::kDouble, "10", "Seconds to wait for a TCP/TLS connection",
       0.1, 600},
      {"s3.path_style", T::kBool, "true",
       "Path-style requests (endpoint/bucket/key); the Massive endpoint needs them"},
      {"s3.profile", T::kString, "", "AWS shared-credentials profile name"},
      {"s3.region", T::kString, "us-east-1",
       "SigV4 region (none is documented; set one)"},
      {"s3.request_timeout", T::kDouble, "30",
       "Seconds a request may stall without receiving data before it is retried", 0.1,
       3600},
      {"s3.retries", T::kInt, "3",
       "Attempts per S3 request inside the client (5xx, throttling, resets)", 1, 100},
      {"s3.secret_access_key",
       T::kString,
       "",
       "S3 secret key",
       0,
       0,
       {},
       /*secret=*/true},
      {"s3.session_token", T::kString, "", "S3 session token", 0, 0, {}, /*secret=*/true},
      {"source.root", T::kString, "",
       "Flat-file source: a mirror folder or s3://bucket/prefix (empty: "
       "s3.endpoint/bucket)"},
      {"system.mode", T::kEnum, "auto",
       "Processing mode; auto picks by memory (DESIGN.md section 1)", 0, 0,
       "auto|streaming|batch|parallel"},
      {"system.threads", T::kInt, "0",
       "Worker threads; 0 = usable cores from the profile", 0, 1024},
  };
}

// Variables that predate the QLAKE_SECTION__KEY scheme (DESIGN.md names
// QLAKE_S3_ENDPOINT).
struct EnvAlias {
  std::string_view var;
  std::string_view key;
};
constexpr EnvAlias kEnvAliases[] = {
    {"QLAKE_S3_ENDPOINT", "s3.endpoint"},
    {"QLAKE_S3_BUCKET", "s3.bucket"},
    {"QLAKE_S3_REGION", "s3.region"},
    {"QLAKE_S3_ACCESS_KEY_ID", "s3.access_key_id"},
    {"QLAKE_S3_SECRET_ACCESS_KEY", "s3.secret_access_key"},
    {"QLAKE_S3_SESSION_TOKEN", "s3.session_token"},
    {"QLAKE_S3_PROFILE", "s3.profile"},
};
// Environment variables that are secrets for other tools but must be masked in our
// output.
constexpr std::string_view kForeignSecretVars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};

const ConfigKeySpec* FindSpec(std::string_view key) {
  const auto& schema = ConfigSchema();
  auto it = std::lower_bound(
      schema.begin(), schema.end(), key,
      [](const ConfigKeySpec& s, std::string_view k) { return s.key < k; });
  return (it != schema.end() && it->key == key) ? &*it : nullptr;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

arrow::Status UnknownKey(std::string_view where, std::string_view key) {
  const ConfigKeySpec* best = nullptr;
  std::size_t best_d = 4;  // suggest only close matches
  for (const auto& s : ConfigSchema()) {
    std::size_t d = EditDistance(key, s.key);
    if (d < best_d) best_d = d, best = &s;
  }
  std::string hint = best ? fmt::format(" (did you mean '{}'?)", best->key)
                          : std::string(" (see `qlake config show` for the keys)");
  return arrow::Status::Invalid(where, ": unknown config key '", key, "'", hint);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "s3.secret_access_key" -> "QLAKE_S3__SECRET_ACCESS_KEY".
std::string EnvVarFor(std::string_view key) {
  std::string out = "QLAKE_";
  for (char c : key) {
    if (c == '.') {
      out += "__";
    } else {
      out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

std::string Trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Parses `text` for `spec`. `where` prefixes errors ("config.yaml:3", "QLAKE_X__Y").
arrow::Result<ConfigValue> ParseValue(const ConfigKeySpec& spec, std::string_view raw,
                                      std::string_view where) {
  std::string text = Trim(raw);
  auto type_error = [&](std::string_view expected) {
    return arrow::Status::Invalid(where, ": ", spec.key, ": expected ", expected,
                                  ", got '", spec.secret ? std::string("****") : text,
                                  "'");
  };
  auto range_check = [&](double v, std::string_view shown) -> arrow::Status {
    if (v < spec.min || (spec.max > 0 && v > spec.max)) {
      std::string range = spec.max > 0
                              ? fmt::format("between {} and {}", spec.min, spec.max)
                              : fmt::format("at least {}", spec.min);
      if (spec.type == ConfigType::kBytes) {
        range = spec.max > 0 ? fmt::format("between {} and {}",
                                           HumanBytes(static_cast<uint64_t>(spec.min)),
                                           HumanBytes(static_cast<uint64_t>(spec.max)))
                             : fmt::format("at least {}",
                                           HumanBytes(static_cast<uint64_t>(spec.min)));
      }
      return arrow::Status::Invalid(where, ": ", spec.key, " must be ", range, ", got ",
                                    shown);
    }
    return arrow::Status::OK();
  };
  switch (spec.type) {
    case ConfigType::kBool: {
      std::string l = Lower(text);
      if (l == "true" || l == "yes" || l == "on" || l == "1") return ConfigValue{true};
      if (l == "false" || l == "no" || l == "off" || l == "0") return ConfigValue{false};
      return type_error("true or false");
    }
    case ConfigType::kInt: {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return type_error("an integer");
      }
      ARROW_RETURN_NOT_OK(range_check(static_cast<double>(v), text));
      return ConfigValue{v};
    }
    case ConfigType::kDouble: {
      if (text.empty()) return type_error("a number");
      errno = 0;
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) {
        return type_error("a number");
      }
      ARROW_RETURN_NOT_OK(range_check(v, text));
      return ConfigValue{v};
    }
    case ConfigType::kBytes: {
      auto v = ParseBytes(text);
      if (!v.ok()) return type_error("a size such as 512MiB or 4GiB");
      ARROW_RETURN_NOT_OK(range_check(static_cast<double>(*v), text));
      return ConfigValue{*v};
    }
    case ConfigType::kEnum: {
      std::string_view choices = spec.choices;
      std::size_t pos = 0;
      while (pos <= choices.size()) {
        auto bar = choices.find('|', pos);
        auto choice =
            choices.substr(pos, bar == std::string_view::npos ? bar : bar - pos);
        if (choice == text) return ConfigValue{text};
        if (bar == std::string_view::npos) break;
        pos = bar + 1;
      }
      std::string one_of(choices);
      std::replace(one_of.begin(), one_of.end(), '|', ',');
      return type_error(fmt::format("one of {}", one_of));
    }
    case ConfigType::kString:
      return ConfigValue{std::string(raw)};
  }
  return arrow::Status::UnknownError("unreachable config type");
}

// Values the profile layer derives from the machine.
std::vector<std::pair<std::string_view, std::string>> ProfileValues(
    const SystemProfile& p) {
  std::vector<std::pair<std::string_view, std::string>> out;
  const uint64_t usable = p.usable_memory ? p.usable_memory : p.total_memory;
  const int cores = std::max(1, p.usable_cores);
  if (usable > 0) {
    uint64_t limit = std::max<uint64_t>(usable / 10 * 8, 64ull << 20);
    out.emplace_back("memory.limit", std::to_string(limit));
    uint64_t cache = std::min<uint64_t>(2ull << 30, limit / 4);
    out.emplace_back("query.cache_bytes", std::to_string(cache));
  }
  out.emplace_back("fetch.jobs", std::to_string(std::min(8, 4 * cores)));
  for (auto& kv : ModeConfigValues(p.mode, cores)) out.push_back(std::move(kv));
  return out;
}

std::string ScalarText(const YAML::Node& node) { return node.Scalar(); }

// Flattens a YAML mapping into dotted keys with their 1-based line numbers.
arrow::Status FlattenYaml(const YAML::Node& node, const std::string& prefix,
                          const std::string& file,
                          std::vector<std::tuple<std::string, std::string, int>>* out) {
  for (const auto& kv : node) {
    const YAML::Node& k = kv.first;
    const YAML::Node& v = kv.second;
    int line = k.Mark().line + 1;
    if (!k.IsScalar()) {
      return arrow::Status::Invalid(file, ":", line, ": config keys must be plain names");
    }
    std::string key = prefix.empty() ? k.Scalar() : prefix + "." + k.Scalar();
    if (v.IsMap()) {
      ARROW_RETURN_NOT_OK(FlattenYaml(v, key, file, out));
    } else if (v.IsScalar()) {
      out->emplace_back(key, ScalarText(v), line);
    } else if (v.IsNull()) {
      return arrow::Status::Invalid(file, ":", line, ": ", key,
                                    " has no value (remove the line to use the default)");
    } else {
      return arrow::Status::Invalid(file, ":", line, ": ", key,
                                    ": expected a single value, got a list");
    }
  }
  return arrow::Status::OK();
}

std::optional<std::string> DefaultConfigFile() {
  namespace fs = std::filesystem;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
    return (fs::path(xdg) / "qlake" / "config.yaml").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (fs::path(home) / ".config" / "qlake" / "config.yaml").string();
  }
  return std::nullopt;
}

}  // namespace

std::string_view ConfigSourceName(ConfigSource s) {
  switch (s) {
    case ConfigSource::kDefault:
      return "default";
    case ConfigSource::kProfile:
      return "profile";
    case ConfigSource::kFile:
      return "file";
    case ConfigSource::kEnv:
      return "env";
    case ConfigSource::kFlag:
      return "flag";
  }
  return "?";
}

std::vector<std::pair<std::string_view, std::string>> ModeConfigValues(
    ProcessingMode mode, int cores) {
  switch (mode) {
    case ProcessingMode::kStreaming:
      return {{"ingest.row_group_rows", "50000"},
              {"ingest.chunk_rows", "250000"},
              {"ingest.compression", "snappy"},
              {"ingest.parallel_files", "1"}};
    case ProcessingMode::kBatch:
      return {{"ingest.row_group_rows", "100000"},
              {"ingest.chunk_rows", "500000"},
              {"ingest.compression", "zstd"},
              {"ingest.parallel_files", "2"}};
    case ProcessingMode::kParallel:
      return {{"ingest.row_group_rows", "1000000"},
              {"ingest.chunk_rows", "0"},
              {"ingest.compression", "zstd"},
              {"ingest.parallel_files", std::to_string(std::max(1, cores / 2))}};
  }
  return {};
}

arrow::Status Config::ApplyModeDefaults(int cores) {
  ARROW_ASSIGN_OR_RAISE(std::string mode_name, GetString("system.mode"));
  if (mode_name == "auto") return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(ProcessingMode mode, ParseProcessingMode(mode_name));
  for (const auto& [key, text] : ModeConfigValues(mode, std::max(1, cores))) {
    // At the profile layer: replaces what the machine's own mode chose, never a value
    // the user set in a file, the environment or a flag.
    ARROW_RETURN_NOT_OK(
        Set(key, text, ConfigSource::kProfile, "system.mode=" + mode_name));
  }
  return arrow::Status::OK();
}

const std::vector<ConfigKeySpec>& ConfigSchema() {
  static const std::vector<ConfigKeySpec> schema = [] {
    auto s = BuildSchema();
    std::sort(s.begin(), s.end(), [](const ConfigKeySpec& a, const ConfigKeySpec& b) {
      return a.key < b.key;
    });
    return s;
  }();
  return schema;
}

Config Config::Defaults(const std::optional<SystemProfile>& profile) {
  Config c;
  for (const auto& spec : ConfigSchema()) {
    auto v = ParseValue(spec, spec.default_value, "default");
    // The schema's defaults are checked by config_test; a bad one is a programming error.
    c.entries_[std::string(spec.key)] =
        ConfigEntry{&spec, v.ok() ? *v : ConfigValue{std::string(spec.default_value)},
                    ConfigSource::kDefault, ""};
  }
  if (profile) {
    for (const auto& [key, text] : ProfileValues(*profile)) {
      // Profile values are computed by us; a failure here is a bug caught by tests.
      (void)c.Set(key, text, ConfigSource::kProfile, "system profile");
    }
  }
  return c;
}

arrow::Result<Config> Config::Load(const ConfigLoadOptions& options) {
  Config c = Defaults(options.profile);

  // Layer 3: the user file.
  std::optional<std::string> file = options.file;
  bool required = file.has_value();
  if (!file && options.use_default_file) file = DefaultConfigFile();
  if (file) {
    std::error_code ec;
    bool exists = std::filesystem::exists(*file, ec);
    if (!exists && required) {
      return arrow::Status::IOError("config file ", *file, " does not exist");
    }
    if (exists) {
      YAML::Node root;
      try {
        root = YAML::LoadFile(*file);
      } catch (const YAML::ParserException& e) {
        return arrow::Status::Invalid(*file, ":", e.mark.line + 1,
                                      ": YAML syntax error: ", e.msg);
      } catch (const YAML::Exception& e) {
        return arrow::Status::IOError("cannot read config file ", *file, ": ", e.what());
      }
      if (root.IsDefined() && !root.IsNull()) {
        if (!root.IsMap()) {
          return arrow::Status::Invalid(*file, ":1: expected a mapping of config keys");
        }
        std::vector<std::tuple<std::string, std::string, int>> flat;
        ARROW_RETURN_NOT_OK(FlattenYaml(root, "", *file, &flat));
        for (const auto& [key, text, line] : flat) {
          std::string where = fmt::format("{}:{}", *file, line);
          const ConfigKeySpec* spec = FindSpec(key);
          if (!spec) return UnknownKey(where, key);
          if (spec->secret) {
            return arrow::Status::Invalid(
                where, ": ", key,
                " is a secret and may not be stored in a config file; set ",
                EnvVarFor(key),
                " in the environment or use the AWS shared credentials file");
          }
          ARROW_RETURN_NOT_OK(c.Set(key, text, ConfigSource::kFile, where));
        }
      }
    }
  }

  // Layer 4: the environment.
  std::vector<std::string> env;
  if (options.environment) {
    env = *options.environment;
  } else {
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  }
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string_view name(kv.data(), eq);
    std::string_view value(kv.data() + eq + 1, kv.size() - eq - 1);
    for (auto foreign : kForeignSecretVars) {
      if (name == foreign) RegisterSecret(value);
    }
    if (name.substr(0, 6) != "QLAKE_") continue;
    std::string key;
    for (const auto& alias : kEnvAliases) {
      if (alias.var == name) key = alias.key;
    }
    if (key.empty()) {
      std::string_view rest = name.substr(6);
      if (rest.find("__") == std::string_view::npos) continue;  // not a config variable
      std::string k = Lower(rest);
      for (std::size_t p; (p = k.find("__")) != std::string::npos;) k.replace(p, 2, ".");
      key = k;
      if (!FindSpec(key)) return UnknownKey(std::string(name), key);
    }
    ARROW_RETURN_NOT_OK(c.Set(key, value, ConfigSource::kEnv, name));
  }
  if (options.profile)
    ARROW_RETURN_NOT_OK(c.ApplyModeDefaults(options.profile->usable_cores));
  return c;
}

arrow::Status Config::Set(std::string_view key, std::string_view text,
                          ConfigSource source, std::string_view origin) {
  const ConfigKeySpec* spec = FindSpec(key);
  if (!spec) return UnknownKey(origin, key);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.source > source) return arrow::Status::OK();
  if (spec->secret) RegisterSecret(text);
  ARROW_ASSIGN_OR_RAISE(auto value, ParseValue(*spec, text, origin));
  entries_[std::string(key)] =
      ConfigEntry{spec, std::move(value), source, std::string(origin)};
  return arrow::Status::OK();
}

arrow::Result<const ConfigEntry*> Config::Find(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end())
    return arrow::Status::KeyError("unknown config key '", key, "'");
  return &it->second;
}

namespace {
template <typename T>
arrow::Result<T> GetAs(const Config& c, std::string_view key,
                       std::string_view type_name) {
  ARROW_ASSIGN_OR_RAISE(const ConfigEntry* e, c.Find(key));
  if (const T* v = std::get_if<T>(&e->value)) return *v;
  return arrow::Status::Invalid("config key '", key, "' is not ", type_name);
}
}  // namespace

arrow::Result<bool> Config::GetBool(std::string_view key) const {
  return GetAs<bool>(*this, key, "a boolean");
}
arrow::Result<int64_t> Config::GetInt(std::string_view key) const {
  return GetAs<int64_t>(*this, key, "an integer");
}
arrow::Result<double> Config::GetDouble(std::string_view key) const {
  return GetAs<double>(*this, key, "a number");
}
arrow::Result<std::string> Config::GetString(std::string_view key) const {
  return GetAs<std::string>(*this, key, "a string");
}

std::string Config::ValueToText(const ConfigEntry& e, bool mask_secrets) {
  if (e.spec && e.spec->secret && mask_secrets) {
    const auto* s = std::get_if<std::string>(&e.value);
    return (s && s->empty()) ? "" : "****";
  }
  return std::visit(
      [&](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, int64_t>) {
          if (e.spec && e.spec->type == ConfigType::kBytes) {
            return fmt::format("{} ({})", v, HumanBytes(static_cast<uint64_t>(v)));
          }
          return std::to_string(v);
        } else if constexpr (std::is_same_v<V, double>) {
          return fmt::format("{}", v);
        } else {
          return v;
        }
      },
      e.value);
}

std::string Config::ShowText() const {
  std::size_t kw = 0, vw = 0;
  std::vector<std::string> values;
  for (const auto& [k, e] : entries_) {
    values.push_back(ValueToText(e));
    kw = std::max(kw, k.size());
    vw = std::max(vw, values.back().size());
  }
  std::string out;
  std::size_t i = 0;
  for (const auto& [k, e] : entries_) {
    std::string src(ConfigSourceName(e.source));
    if (!e.origin.empty() && e.source != ConfigSource::kProfile) src += " " + e.origin;
    out +=
        MaskSecrets(fmt::format("{:<{}} = {:<{}}  # {}\n", k, kw, values[i++], vw, src));
  }
  return out;
}

std::string Config::ShowJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, e] : entries_) {
    nlohmann::ordered_json v;
    if (e.spec && e.spec->secret) {
      v = ValueToText(e);
    } else {
      std::visit([&](const auto& x) { v = x; }, e.value);
    }
    j[k] = {{"value", v},
            {"source", std::string(ConfigSourceName(e.source))},
            {"origin", e.origin},
            {"secret", e.spec && e.spec->secret}};
  }
  return MaskSecrets(j.dump(2)) + "\n";
}

arrow::Result<int64_t> ParseBytes(std::string_view raw) {
  std::string text = Trim(raw);
  auto bad = [&] {
    return arrow::Status::Invalid("'", text,
                                  "' is not a size (examples: 512MiB, 4GiB, 1000000)");
  };
  if (text.empty()) return bad();
  std::size_t i = 0;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  std::string num = text.substr(0, i);
  std::string unit = Lower(Trim(std::string_view(text).substr(i)));
  if (num.empty() || std::count(num.begin(), num.end(), '.') > 1) return bad();
  double v = std::strtod(num.c_str(), nullptr);
  double mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    mult = 1024.0;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    mult = kGiB;
  } else if (unit == "t" || unit == "tb" || unit == "tib") {
    mult = kGiB * 1024;
  } else {
    return bad();
  }
  double bytes = v * mult;
  if (!std::isfinite(bytes) || bytes > 9.0e18) return bad();
  if (unit.empty() && num.find('.') != std::string::npos)
    return bad();  // fractional bytes
  return static_cast<int64_t>(std::llround(bytes));
}

}  // namespace qlake
