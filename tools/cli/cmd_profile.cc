// qlake profile [--json]: what the machine offers (qlake/core/system_profile.h), with the
// free disk measured at lake.root, and the settings derived from it that are in effect
// after every config layer: the processing mode and where it was chosen, memory.limit and
// system.threads.

#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"

namespace qlake::cli {
namespace {

struct Setting {
  std::string text;    // value as printed
  std::string source;  // "default", "profile", "file", "env", "flag"
  std::string origin;  // "config.yaml:12", "QLAKE_SYSTEM__MODE", "--set", ""
};

arrow::Result<Setting> SourceOf(const Config& config, std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(const ConfigEntry* entry, config.Find(key));
  return Setting{"", std::string(ConfigSourceName(entry->source)), entry->origin};
}

// "default", "profile", "file config.yaml:3", "env QLAKE_SYSTEM__MODE", "flag --set"; the
// profile layer's origin only repeats its name (as in `config show`).
std::string Where(const Setting& s) {
  if (s.origin.empty() || s.source == "profile") return s.source;
  return fmt::format("{} {}", s.source, s.origin);
}

struct Effective {
  ProcessingMode mode = ProcessingMode::kStreaming;
  std::string mode_setting;  // "auto" or a mode name
  Setting mode_source;
  int64_t memory_limit = 0;
  Setting memory_limit_source;
  int64_t threads_setting = 0;  // 0 = usable cores
  int64_t threads = 0;          // in effect
  Setting threads_source;
};

arrow::Result<Effective> Resolve(const Context& ctx, const SystemProfile& profile) {
  Effective e;
  ARROW_ASSIGN_OR_RAISE(e.mode_setting, ctx.config.GetString("system.mode"));
  ARROW_ASSIGN_OR_RAISE(e.mode_source, SourceOf(ctx.config, "system.mode"));
  if (e.mode_setting == "auto") {
    e.mode = profile.mode;
  } else {
    auto mode = ParseProcessingMode(e.mode_setting);
    if (!mode.ok()) {
      return arrow::Status::Invalid("system.mode (", Where(e.mode_source), "): '",
                                    e.mode_setting,
                                    "' is not one of auto, streaming, batch, parallel");
    }
    e.mode = *mode;
  }
  ARROW_ASSIGN_OR_RAISE(e.memory_limit, ctx.config.GetInt("memory.limit"));
  ARROW_ASSIGN_OR_RAISE(e.memory_limit_source, SourceOf(ctx.config, "memory.limit"));
  ARROW_ASSIGN_OR_RAISE(e.threads_setting, ctx.config.GetInt("system.threads"));
  ARROW_ASSIGN_OR_RAISE(e.threads_source, SourceOf(ctx.config, "system.threads"));
  e.threads = e.threads_setting > 0 ? e.threads_setting : profile.usable_cores;
  return e;
}

// Why this mode: the user's choice, or the profile's for its usable memory.
std::string ModeReason(const Effective& e, const SystemProfile& p) {
  if (e.mode_setting != "auto") {
    return fmt::format("system.mode = {}, {}", e.mode_setting, Where(e.mode_source));
  }
  return fmt::format("from usable memory {}; system.mode = auto, {}",
                     HumanBytes(p.usable_memory), Where(e.mode_source));
}

std::string ThreadsReason(const Effective& e) {
  if (e.threads_setting > 0) {
    return fmt::format("system.threads = {}, {}", e.threads_setting,
                       Where(e.threads_source));
  }
  return fmt::format("usable cores; system.threads = 0, {}", Where(e.threads_source));
}

// The profile ctx carries was probed before the configuration existed, at the working
// directory; report the free disk where the lake goes instead, if that is a local path.
arrow::Result<SystemProfile> ProfileAtLakeRoot(const Context& ctx) {
  SystemProfile p = ctx.profile;
  ARROW_ASSIGN_OR_RAISE(const std::string lake_root, ctx.config.GetString("lake.root"));
  if (lake_root.empty() || lake_root.find("://") != std::string::npos) return p;
  ProbeOptions opts;
  opts.disk_path = lake_root;
  ARROW_ASSIGN_OR_RAISE(const SystemProfile at_root, ProbeSystem(opts));
  p.disk_path = at_root.disk_path;
  p.disk_free = at_root.disk_free;
  p.disk_total = at_root.disk_total;
  return p;
}

nlohmann::ordered_json SettingJson(const nlohmann::ordered_json& value,
                                   const Setting& s) {
  nlohmann::ordered_json j;
  j["value"] = value;
  j["source"] = s.source;
  j["origin"] = s.origin;
  return j;
}

std::string ToJson(const SystemProfile& profile, const Effective& e) {
  nlohmann::ordered_json j;
  j["profile"] = nlohmann::ordered_json::parse(profile.ToJson());
  nlohmann::ordered_json eff;
  nlohmann::ordered_json mode = SettingJson(ProcessingModeName(e.mode), e.mode_source);
  mode["setting"] = e.mode_setting;
  eff["mode"] = std::move(mode);
  eff["memory.limit"] = SettingJson(e.memory_limit, e.memory_limit_source);
  nlohmann::ordered_json threads = SettingJson(e.threads, e.threads_source);
  threads["setting"] = e.threads_setting;
  eff["system.threads"] = std::move(threads);
  j["effective"] = std::move(eff);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string ToText(const SystemProfile& p, const Effective& e) {
  std::string out = "machine\n";
  // Indent the profile's rows under their heading.
  const std::string profile = p.ToText();
  size_t pos = 0;
  while (pos < profile.size()) {
    const size_t nl = profile.find('\n', pos);
    const size_t end = nl == std::string::npos ? profile.size() : nl;
    out += "  " + profile.substr(pos, end - pos) + "\n";
    pos = end + 1;
  }
  const std::string limit =
      e.memory_limit > 0 ? HumanBytes(static_cast<uint64_t>(e.memory_limit)) : "0 (none)";
  out += "in effect\n";
  out += fmt::format("  {:<14}  {:<10}  ({})\n", "mode", ProcessingModeName(e.mode),
                     ModeReason(e, p));
  out += fmt::format("  {:<14}  {:<10}  ({})\n", "memory.limit", limit,
                     Where(e.memory_limit_source));
  out += fmt::format("  {:<14}  {:<10}  ({})\n", "system.threads", e.threads,
                     ThreadsReason(e));
  return out;
}

}  // namespace

Runner SetupProfile(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "Print JSON instead of text");
  return [json](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(const SystemProfile profile, ProfileAtLakeRoot(ctx));
    ARROW_ASSIGN_OR_RAISE(const Effective e, Resolve(ctx, profile));
    std::cout << (*json ? ToJson(profile, e) : ToText(profile, e));
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli
