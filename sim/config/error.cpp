#include "sim/config/error.hpp"

#include <cstring>

namespace tailsim {

IoError::IoError(std::string path, const std::string& message, int error_number)
    : std::runtime_error(path + ": " + message + (error_number ? std::string(": ") + std::strerror(error_number) : "")),
      path_(std::move(path)),
      error_number_(error_number) {}

std::string quote_input(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;  // characters between the quotes, escapes included
  static const char* const kHex = "0123456789abcdef";
  std::string shown;
  std::size_t used = 0;
  for (; used < text.size(); ++used) {
    const auto c = static_cast<unsigned char>(text[used]);
    const bool escape = c < 0x20 || c == 0x7f;
    if (shown.size() + (escape ? 4 : 1) > kMaxShown) break;
    if (escape) {
      shown += "\\x";
      shown += kHex[c >> 4];
      shown += kHex[c & 0xf];
    } else {
      shown += static_cast<char>(c);
    }
  }
  if (used == text.size()) return "'" + shown + "'";
  // A cut inside a UTF-8 sequence (the next byte is a continuation byte, 10xxxxxx) drops its first bytes.
  std::size_t keep = shown.size();
  const auto byte = [](char c) { return static_cast<unsigned char>(c); };
  if ((byte(text[used]) & 0xc0) == 0x80) {
    while (keep > 0 && (byte(shown[keep - 1]) & 0xc0) == 0x80) --keep;
    if (keep > 0 && byte(shown[keep - 1]) >= 0xc0) --keep;
  }
  shown.resize(keep);
  return "'" + shown + "...' (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace tailsim
