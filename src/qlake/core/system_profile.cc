// placeholder: being written
#include "qlake/core/system_profile.h"
namespace qlake {
std::string_view ProcessingModeName(ProcessingMode) { return "streaming"; }
arrow::Result<ProcessingMode> ParseProcessingMode(std::string_view) { return ProcessingMode::kStreaming; }
std::string SystemProfile::ToJson() const { return "{}"; }
std::string SystemProfile::ToText() const { return ""; }
arrow::Result<SystemProfile> ProbeSystem(const ProbeOptions&) { return SystemProfile{}; }
ProcessingMode ModeForMemory(uint64_t) { return ProcessingMode::kStreaming; }
}  // namespace qlake
