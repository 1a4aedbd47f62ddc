// A 64-bit FNV-1a hash of bytes: stable across platforms and compilers (unlike std::hash), for fingerprints
// and checksums written into files (records.jsonl). Not cryptographic: it detects corruption and edits, not
// a forger who recomputes it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace tailsim {

inline constexpr std::uint64_t kFnv1aOffset = 0xCBF29CE484222325ull;

// `h` continued over `bytes` (start from kFnv1aOffset).
inline constexpr std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t h = kFnv1aOffset) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

// `h` as 16 lower-case hex digits.
inline std::string hex16(std::uint64_t h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kDigits[h & 0xF];
  return out;
}

}  // namespace tailsim
