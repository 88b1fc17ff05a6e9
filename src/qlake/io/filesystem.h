// File: qlake/io/filesystem.h
//
// One place that turns a source or lake location into an Arrow FileSystem, so every
// stage (fetch, ingest, query, pipeline) reaches S3 the same way:
//
//   std::string path;
//   ARROW_ASSIGN_OR_RAISE(auto fs, qlake::io::OpenFileSystem("s3://flatfiles", config,
//                                                            &path));
//   // path == "flatfiles"; fs is an S3FileSystem for config's s3.* keys
//
// Locations:
//   "s3://bucket/prefix"   S3 with endpoint, region, path style, timeouts, retries and
//                          credentials from the config (below). "s3://" alone means the
//                          bucket of s3.bucket. URI query parameters are refused: put
//                          such settings in the config so they are shown by
//                          `qlake config show` and never echo a secret.
//   "/abs/path", "rel/path" the local file system (relative paths are made absolute).
//   "file:///...", "mock:///..." and other Arrow URIs: Arrow's own factory.
//
// S3 settings (config keys, docs/config.md and docs/fetch.md):
//   s3.endpoint        "https://files.massive.com" (default), "http://127.0.0.1:9000";
//                      empty = AWS itself. The scheme picks http/https.
//   s3.region          SigV4 region (the Massive endpoint documents none; us-east-1).
//   s3.path_style      endpoint/bucket/key requests (default true, as Massive needs).
//   s3.connect_timeout, s3.request_timeout (a request that receives nothing for this
//                      long fails and is retried), s3.retries (attempts per request in
//                      the client, with exponential backoff and jitter on 5xx,
//                      throttling, timeouts and connection resets).
//
// Credentials, first match wins (ResolveS3Credentials):
//   1. s3.access_key_id + s3.secret_access_key (+ s3.session_token) from the config
//      layers: QLAKE_S3_ACCESS_KEY_ID / QLAKE_S3_SECRET_ACCESS_KEY (or the
//      QLAKE_S3__* spelling) or --set; both or neither must be set;
//   2. when s3.profile (--profile) is set: that profile of the AWS shared credentials
//      file ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials); missing = error;
//   3. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   4. the shared credentials file's $AWS_PROFILE profile, else [default], if present;
//   5. none: anonymous requests (fine for a local test server; Massive answers 403).
// Every secret found is registered with the logging module (core/logging.h), so it is
// masked in logs, errors and reports; only the name of the source is ever printed.
//
// S3 is initialized on first use (EnsureS3Initialized); the process must call
// arrow::fs::EnsureS3Finalized() before it exits, after every S3 object is gone (the
// CLI's main() does). TLS uses the system CA bundle (/etc/ssl/certs/ca-certificates.crt
// where present): the AWS SDK inside the pyarrow wheel has another distribution's path
// baked in.
//
// Thread safety: all functions are safe to call concurrently. The returned FileSystems
// are thread-safe and reuse their connections; open one per location and share it.

#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/filesystem/filesystem.h>
#include <arrow/filesystem/s3fs.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/config.h"

namespace qlake::io {

/// Looks up an environment variable; nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
/// The process environment.
EnvLookup ProcessEnv();

struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  /// Where they came from, safe to print: "config (QLAKE_S3_ACCESS_KEY_ID)",
  /// "profile 'massive' in /home/me/.aws/credentials", "AWS_ACCESS_KEY_ID", or
  /// "none (anonymous)".
  std::string source;
  bool anonymous() const { return access_key_id.empty(); }
};

/// Resolves the credentials as described in the file comment. Registers every secret
/// it finds. Invalid for a half-set key pair or a named profile that does not exist.
arrow::Result<S3Credentials> ResolveS3Credentials(const Config& config,
                                                  const EnvLookup& env = ProcessEnv());

/// The S3 options for `config` (endpoint, region, path style, timeouts, retries,
/// credentials, CA bundle). Initializes S3 if needed.
arrow::Result<arrow::fs::S3Options> MakeS3Options(const Config& config,
                                                  const EnvLookup& env = ProcessEnv());

/// True for "s3://..." locations.
bool IsS3Uri(std::string_view uri);

/// Opens the file system of `uri` (see the file comment) and sets *path_out to the
/// location's path inside it ("bucket/prefix" for S3, an absolute path locally).
/// Opening does not touch the network; the first request happens on first use.
arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> OpenFileSystem(
    const std::string& uri, const Config& config, std::string* path_out);

/// How a failed S3 (or file system) request should be handled; see ClassifyError.
enum class ErrorClass : int8_t {
  kNotFound,   // 404 / NoSuchKey: the object is not there (yet)
  kForbidden,  // 403 / AccessDenied / bad key or signature: plan or credentials
  kTransient,  // 5xx, throttling, timeouts, resets, truncated bodies: retry
  kPermanent,  // anything else (bad request, local disk errors): do not retry
};
std::string_view ErrorClassName(ErrorClass c);  // "not-found", "forbidden", ...

/// Classifies a Status returned by Arrow's S3 file system (its messages carry the AWS
/// error name or HTTP status) or by our own download code.
ErrorClass ClassifyError(const arrow::Status& status);

/// Exponential backoff with jitter for retry number `attempt` (0, 1, ...): with
/// d = min(max_ms, base_ms * 2^attempt), a uniformly random wait in [d/2, d].
int64_t BackoffMs(int attempt, int64_t base_ms, int64_t max_ms);

}  // namespace qlake::io
