#include "qlake/io/filesystem.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include <spdlog/spdlog.h>

#include "qlake/core/logging.h"

namespace qlake::io {

namespace {

constexpr std::string_view kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

std::string Trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// One profile of an AWS shared credentials file (INI: [name], key = value, # comments).
struct IniProfile {
  std::string access_key_id, secret_access_key, session_token;
};

arrow::Result<std::optional<IniProfile>> ReadCredentialsProfile(const std::string& file,
                                                                const std::string& name) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::optional<IniProfile> found;
  bool in_profile = false;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      if (t.back() != ']') continue;
      std::string section = Trim(std::string_view(t).substr(1, t.size() - 2));
      // ~/.aws/config spells sections "profile NAME"; accept both spellings.
      if (section.rfind("profile ", 0) == 0) section = Trim(section.substr(8));
      in_profile = (section == name);
      if (in_profile && !found) found = IniProfile{};
      continue;
    }
    if (!in_profile) continue;
    auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(std::string_view(t).substr(0, eq));
    std::string value = Trim(std::string_view(t).substr(eq + 1));
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (key == "aws_access_key_id") found->access_key_id = value;
    if (key == "aws_secret_access_key") found->secret_access_key = value;
    if (key == "aws_session_token") found->session_token = value;
  }
  return found;
}

std::string CredentialsFile(const EnvLookup& env) {
  if (auto f = env("AWS_SHARED_CREDENTIALS_FILE"); f && !f->empty()) return *f;
  if (auto home = env("HOME"); home && !home->empty()) {
    return (std::filesystem::path(*home) / ".aws" / "credentials").string();
  }
  return {};
}

void RegisterAll(const S3Credentials& c) {
  RegisterSecret(c.access_key_id);
  RegisterSecret(c.secret_access_key);
  RegisterSecret(c.session_token);
}

// Retries inside the AWS client: what the SDK itself calls retryable (5xx, throttling,
// timeouts, connection errors), at most `max_attempts` times in all, with exponential
// backoff and jitter.
class JitterRetryStrategy : public arrow::fs::S3RetryStrategy {
 public:
  JitterRetryStrategy(int64_t max_attempts, int64_t base_ms, int64_t max_ms)
      : max_attempts_(max_attempts), base_ms_(base_ms), max_ms_(max_ms) {}

  bool ShouldRetry(const AWSErrorDetail& error, int64_t attempted_retries) override {
    bool retry = error.should_retry && attempted_retries + 1 < max_attempts_;
    if (retry) {
      spdlog::debug("s3: retrying after {} ({}), retry {} of {}", error.exception_name,
                    MaskSecrets(error.message), attempted_retries + 1, max_attempts_ - 1);
    }
    return retry;
  }
  int64_t CalculateDelayBeforeNextRetry(const AWSErrorDetail&,
                                        int64_t attempted_retries) override {
    return BackoffMs(static_cast<int>(attempted_retries), base_ms_, max_ms_);
  }

 private:
  int64_t max_attempts_, base_ms_, max_ms_;
};

std::once_flag s3_env_once;

}  // namespace

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

arrow::Result<S3Credentials> ResolveS3Credentials(const Config& config,
                                                  const EnvLookup& env) {
  S3Credentials c;
  // 1. The config layers (QLAKE_S3_* variables, --set).
  ARROW_ASSIGN_OR_RAISE(const ConfigEntry* key, config.Find("s3.access_key_id"));
  ARROW_ASSIGN_OR_RAISE(const ConfigEntry* secret, config.Find("s3.secret_access_key"));
  ARROW_ASSIGN_OR_RAISE(c.access_key_id, config.GetString("s3.access_key_id"));
  ARROW_ASSIGN_OR_RAISE(c.secret_access_key, config.GetString("s3.secret_access_key"));
  ARROW_ASSIGN_OR_RAISE(c.session_token, config.GetString("s3.session_token"));
  if (c.access_key_id.empty() != c.secret_access_key.empty()) {
    return arrow::Status::Invalid(
        "s3.access_key_id and s3.secret_access_key must be set together (",
        c.access_key_id.empty() ? "the key id is missing" : "the secret is missing",
        "): set QLAKE_S3_ACCESS_KEY_ID and QLAKE_S3_SECRET_ACCESS_KEY");
  }
  if (!c.access_key_id.empty()) {
    const ConfigEntry* from = key->origin.empty() ? secret : key;
    c.source =
        "config (" + (from->origin.empty() ? std::string("default") : from->origin) + ")";
    RegisterAll(c);
    return c;
  }
  c.session_token.clear();

  const std::string file = CredentialsFile(env);
  auto from_profile = [&](const std::string& name,
                          bool required) -> arrow::Result<std::optional<S3Credentials>> {
    if (file.empty()) {
      if (required) {
        return arrow::Status::Invalid("profile '", name,
                                      "': no credentials file (HOME is not set)");
      }
      return std::nullopt;
    }
    ARROW_ASSIGN_OR_RAISE(auto p, ReadCredentialsProfile(file, name));
    if (!p) {
      if (required) {
        return arrow::Status::Invalid(
            "profile '", name, "' not found in ", file, " (add [", name,
            "] with aws_access_key_id and aws_secret_access_key)");
      }
      return std::nullopt;
    }
    S3Credentials r;
    r.access_key_id = p->access_key_id;
    r.secret_access_key = p->secret_access_key;
    r.session_token = p->session_token;
    RegisterAll(r);
    if (r.access_key_id.empty() || r.secret_access_key.empty()) {
      return arrow::Status::Invalid("profile '", name, "' in ", file,
                                    " lacks aws_access_key_id or aws_secret_access_key");
    }
    r.source = "profile '" + name + "' in " + file;
    return r;
  };

  // 2. An explicitly named profile.
  ARROW_ASSIGN_OR_RAISE(std::string profile, config.GetString("s3.profile"));
  if (!profile.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto r, from_profile(profile, /*required=*/true));
    return *r;
  }
  // 3. The standard AWS variables.
  auto aws_key = env("AWS_ACCESS_KEY_ID");
  auto aws_secret = env("AWS_SECRET_ACCESS_KEY");
  if (aws_key && !aws_key->empty() && aws_secret && !aws_secret->empty()) {
    c.access_key_id = *aws_key;
    c.secret_access_key = *aws_secret;
    c.session_token = env("AWS_SESSION_TOKEN").value_or("");
    c.source = "AWS_ACCESS_KEY_ID";
    RegisterAll(c);
    return c;
  }
  // 4. The shared credentials file's current profile.
  std::string current = env("AWS_PROFILE").value_or("");
  if (current.empty()) current = "default";
  ARROW_ASSIGN_OR_RAISE(auto r, from_profile(current, /*required=*/false));
  if (r) return *r;
  // 5. Anonymous.
  c = S3Credentials{};
  c.source = "none (anonymous)";
  return c;
}

arrow::Result<arrow::fs::S3Options> MakeS3Options(const Config& config,
                                                  const EnvLookup& env) {
  std::call_once(s3_env_once, [] {
    // The SDK's default chain may probe EC2 instance metadata and wait for a timeout off
    // EC2 (shared/docs/arrow-cpp.md 1.6); we never use that chain, but the SDK may still
    // look up a region there.
    setenv("AWS_EC2_METADATA_DISABLED", "true", /*overwrite=*/0);
  });
  ARROW_RETURN_NOT_OK(arrow::fs::EnsureS3Initialized());

  arrow::fs::S3Options o;
  ARROW_ASSIGN_OR_RAISE(std::string endpoint, config.GetString("s3.endpoint"));
  endpoint = Trim(endpoint);
  if (!endpoint.empty()) {
    std::string scheme = "https";
    auto sep = endpoint.find("://");
    if (sep != std::string::npos) {
      scheme = endpoint.substr(0, sep);
      endpoint = endpoint.substr(sep + 3);
    }
    if (scheme != "http" && scheme != "https") {
      return arrow::Status::Invalid("s3.endpoint '", endpoint,
                                    "': the scheme must be http or https");
    }
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (endpoint.empty() || endpoint.find('/') != std::string::npos) {
      return arrow::Status::Invalid(
          "s3.endpoint must be a scheme and host[:port] such as "
          "https://files.massive.com, without a path");
    }
    o.scheme = scheme;
    o.endpoint_override = endpoint;
  }
  ARROW_ASSIGN_OR_RAISE(o.region, config.GetString("s3.region"));
  ARROW_ASSIGN_OR_RAISE(bool path_style, config.GetBool("s3.path_style"));
  o.force_virtual_addressing = !path_style;
  ARROW_ASSIGN_OR_RAISE(o.connect_timeout, config.GetDouble("s3.connect_timeout"));
  // On Linux the SDK turns this into curl's low-speed limit: a transfer that receives
  // nothing for this long fails (and is retried).
  ARROW_ASSIGN_OR_RAISE(o.request_timeout, config.GetDouble("s3.request_timeout"));
  ARROW_ASSIGN_OR_RAISE(int64_t retries, config.GetInt("s3.retries"));
  ARROW_ASSIGN_OR_RAISE(int64_t base_ms, config.GetInt("fetch.backoff_ms"));
  ARROW_ASSIGN_OR_RAISE(int64_t max_ms, config.GetInt("fetch.backoff_max_ms"));
  o.retry_strategy = std::make_shared<JitterRetryStrategy>(retries, base_ms, max_ms);
  std::error_code ec;
  if (std::filesystem::exists(kSystemCaBundle, ec)) {
    o.tls_ca_file_path = std::string(kSystemCaBundle);
  }
  // Reads are ranged GETs on demand; nothing is written through this path by fetch, and
  // a lake on S3 wants its writes to finish inside Close().
  o.background_writes = false;

  ARROW_ASSIGN_OR_RAISE(auto creds, ResolveS3Credentials(config, env));
  if (creds.anonymous()) {
    o.ConfigureAnonymousCredentials();
  } else {
    o.ConfigureAccessKey(creds.access_key_id, creds.secret_access_key,
                         creds.session_token);
  }
  spdlog::debug("s3: endpoint {}://{} region {} {} credentials from {}", o.scheme,
                o.endpoint_override.empty() ? "(aws)" : o.endpoint_override, o.region,
                path_style ? "path-style" : "virtual-host", creds.source);
  return o;
}

bool IsS3Uri(std::string_view uri) { return uri.rfind("s3://", 0) == 0; }

arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> OpenFileSystem(
    const std::string& uri, const Config& config, std::string* path_out) {
  if (uri.empty()) return arrow::Status::Invalid("empty location");
  if (IsS3Uri(uri)) {
    std::string rest = uri.substr(5);
    if (rest.find('?') != std::string::npos || rest.find('#') != std::string::npos) {
      return arrow::Status::Invalid(
          "'", MaskSecrets(uri),
          "': S3 options in the URI are not supported; set s3.endpoint, s3.region and "
          "the credentials in the config or environment (docs/fetch.md)");
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.empty()) {
      ARROW_ASSIGN_OR_RAISE(rest, config.GetString("s3.bucket"));
    }
    if (rest.empty()) return arrow::Status::Invalid("'", uri, "' names no bucket");
    ARROW_ASSIGN_OR_RAISE(auto options, MakeS3Options(config));
    ARROW_ASSIGN_OR_RAISE(auto fs, arrow::fs::S3FileSystem::Make(options));
    if (path_out) *path_out = rest;
    return fs;
  }
  std::string target = uri;
  if (uri.find("://") == std::string::npos) {
    target = std::filesystem::absolute(uri).lexically_normal().string();
    while (target.size() > 1 && target.back() == '/') target.pop_back();
  }
  std::string path;
  auto fs = arrow::fs::FileSystemFromUriOrPath(target, &path);
  if (!fs.ok()) {
    return arrow::Status::Invalid(
        "'", uri, "' is neither a folder nor a file system URI: ", fs.status().message());
  }
  if (path_out) *path_out = path;
  return *fs;
}

std::string_view ErrorClassName(ErrorClass c) {
  switch (c) {
    case ErrorClass::kNotFound:
      return "not-found";
    case ErrorClass::kForbidden:
      return "forbidden";
    case ErrorClass::kTransient:
      return "transient";
    case ErrorClass::kPermanent:
      return "permanent";
  }
  return "?";
}

ErrorClass ClassifyError(const arrow::Status& status) {
  if (status.ok()) return ErrorClass::kPermanent;
  const std::string& m = status.message();
  auto has = [&](std::string_view s) { return m.find(s) != std::string::npos; };
  if (has("NO_SUCH_KEY") || has("RESOURCE_NOT_FOUND") || has("HTTP status 404") ||
      has("NoSuchKey") || has("NO_SUCH_BUCKET")) {
    return ErrorClass::kNotFound;
  }
  if (has("ACCESS_DENIED") || has("HTTP status 403") || has("AccessDenied") ||
      has("INVALID_ACCESS_KEY_ID") || has("SIGNATURE_DOES_NOT_MATCH") ||
      has("INVALID_CLIENT_TOKEN_ID") || has("UNRECOGNIZED_CLIENT") ||
      has("MISSING_AUTHENTICATION_TOKEN") || has("INVALID_SIGNATURE")) {
    return ErrorClass::kForbidden;
  }
  if (has("SERVICE_UNAVAILABLE") || has("THROTTLING") || has("SLOW_DOWN") ||
      has("INTERNAL_FAILURE") || has("REQUEST_TIMEOUT") || has("NETWORK_CONNECTION") ||
      has("HTTP status 5") || has("REQUEST_TIME_TOO_SKEWED") || has("curl") ||
      has("imeout") || has("onnection reset") || has("truncated") ||
      has("unexpected end") || has("short read")) {
    return ErrorClass::kTransient;
  }
  return ErrorClass::kPermanent;
}

int64_t BackoffMs(int attempt, int64_t base_ms, int64_t max_ms) {
  base_ms = std::max<int64_t>(1, base_ms);
  max_ms = std::max(base_ms, max_ms);
  double d = static_cast<double>(base_ms) * std::pow(2.0, std::clamp(attempt, 0, 40));
  d = std::min(d, static_cast<double>(max_ms));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return static_cast<int64_t>(d * jitter(rng));
}

}  // namespace qlake::io
