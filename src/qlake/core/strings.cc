#include "qlake/core/strings.h"

namespace qlake {

std::vector<std::string> SplitCommaList(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(pos, comma - pos);
    const std::size_t b = item.find_first_not_of(" \t");
    if (b != std::string_view::npos) {
      const std::size_t e = item.find_last_not_of(" \t");
      out.emplace_back(item.substr(b, e - b + 1));
    }
    pos = comma + 1;
  }
  return out;
}

}  // namespace qlake
