#include "qlake/core/logging.h"

#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

namespace qlake {

namespace {

constexpr std::size_t kMinSecretLength = 4;

struct SecretRegistry {
  std::shared_mutex mu;
  std::vector<std::string> secrets;
};

SecretRegistry& Registry() {
  static SecretRegistry registry;
  return registry;
}

// A sink that masks secrets in the message, then formats it as text or JSON and writes it
// to stderr. Masking happens on the payload before formatting, so no format (and no
// future sink) can leak an unmasked secret.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StderrSink(LogFormat format) : format_(format) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string payload =
        MaskSecrets(std::string_view(msg.payload.data(), msg.payload.size()));
    auto level = spdlog::level::to_string_view(msg.level);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
            .count() %
        1000;
    std::string line;
    if (format_ == LogFormat::kJson) {
      line = fmt::format(
          R"({{"ts":"{:%Y-%m-%dT%H:%M:%S}.{:03d}Z","level":"{}","msg":"{}"}})",
          fmt::gmtime(std::chrono::system_clock::to_time_t(msg.time)),
          static_cast<int>(ms), std::string_view(level.data(), level.size()),
          JsonEscape(payload));
    } else {
      line = fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03d} [{}] {}",
                         fmt::localtime(std::chrono::system_clock::to_time_t(msg.time)),
                         static_cast<int>(ms),
                         std::string_view(level.data(), level.size()), payload);
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  LogFormat format_;
};

}  // namespace

arrow::Status InitLogging(const LoggingOptions& options) {
  auto level = spdlog::level::from_str(options.level);
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (level == spdlog::level::off && options.level != "off") {
    return arrow::Status::Invalid(
        "log level '", options.level,
        "' is not one of trace, debug, info, warn, error, critical, off");
  }
  auto logger = std::make_shared<spdlog::logger>(
      "qlake", std::make_shared<StderrSink>(options.format));
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return arrow::Status::OK();
}

void RegisterSecret(std::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  auto& reg = Registry();
  std::unique_lock lock(reg.mu);
  for (const auto& s : reg.secrets) {
    if (s == secret) return;
  }
  reg.secrets.emplace_back(secret);
}

std::string MaskSecrets(std::string_view text) {
  std::string out(text);
  auto& reg = Registry();
  std::shared_lock lock(reg.mu);
  for (const auto& secret : reg.secrets) {
    std::size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "****");
      pos += 4;
    }
  }
  return out;
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

}  // namespace qlake
