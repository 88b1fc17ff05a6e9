// placeholder: being written
#include "qlake/core/config.h"
namespace qlake {
std::string_view ConfigSourceName(ConfigSource) { return "default"; }
const std::vector<ConfigKeySpec>& ConfigSchema() { static std::vector<ConfigKeySpec> s; return s; }
arrow::Result<Config> Config::Load(const ConfigLoadOptions&) { return Config{}; }
Config Config::Defaults(const std::optional<SystemProfile>&) { return Config{}; }
arrow::Status Config::Set(std::string_view, std::string_view, ConfigSource, std::string_view) { return arrow::Status::OK(); }
arrow::Result<bool> Config::GetBool(std::string_view) const { return false; }
arrow::Result<int64_t> Config::GetInt(std::string_view) const { return 0; }
arrow::Result<double> Config::GetDouble(std::string_view) const { return 0.0; }
arrow::Result<std::string> Config::GetString(std::string_view) const { return std::string(); }
arrow::Result<const ConfigEntry*> Config::Find(std::string_view) const { return arrow::Status::KeyError("x"); }
std::string Config::ShowText() const { return ""; }
std::string Config::ShowJson() const { return ""; }
std::string Config::ValueToText(const ConfigEntry&, bool) { return ""; }
arrow::Result<int64_t> ParseBytes(std::string_view) { return 0; }
std::string FormatBytes(uint64_t) { return ""; }
}  // namespace qlake
