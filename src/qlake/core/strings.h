// File: qlake/core/strings.h
//
// Small string helpers shared by the CLI, the Python module and the libraries.
//
// Thread safety: pure functions.

#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace qlake {

/// Splits a comma-separated list as users type it on a command line or in a config
/// value: items are trimmed of blanks and tabs, empty items are dropped.
/// "AAPL, MSFT,,BRK.B " -> {"AAPL", "MSFT", "BRK.B"}; "" -> {}.
std::vector<std::string> SplitCommaList(std::string_view text);

}  // namespace qlake
