// File: qlake/core/logging.h
//
// Logging for the library and the CLI, on spdlog. One process-wide logger writes to
// stderr, as text ("2026-11-25 12:00:00.123 [info] ingest: ...") or as JSON lines
// ({"ts":...,"level":"info","msg":"..."}) for log shippers.
//
// Secrets: every string registered with RegisterSecret() is replaced by "****" in every
// log line, in CLI error lines (FormatCliError) and in anything passed through
// MaskSecrets(). The config layer registers the values of its secret keys as it loads
// them, so nothing downstream has to remember to mask.
//
// Thread safety: all functions are safe to call from any thread; InitLogging should be
// called once at start-up before other threads log.

#pragma once

#include <string>
#include <string_view>

#include <arrow/status.h>
#include <spdlog/spdlog.h>

namespace qlake {

enum class LogFormat { kText, kJson };

struct LoggingOptions {
  /// spdlog level name: trace, debug, info, warn, error, critical, off.
  std::string level = "info";
  LogFormat format = LogFormat::kText;
};

/// Installs the process-wide logger on stderr. Invalid for an unknown level name.
arrow::Status InitLogging(const LoggingOptions& options);

/// Adds a secret to be masked. Strings shorter than 4 characters are ignored (masking
/// them would mangle ordinary text and they protect nothing).
void RegisterSecret(std::string_view secret);

/// Returns `text` with every registered secret replaced by "****".
std::string MaskSecrets(std::string_view text);

/// Escapes a string for inclusion in a JSON string literal (no surrounding quotes).
std::string JsonEscape(std::string_view text);

}  // namespace qlake
