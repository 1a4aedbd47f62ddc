// Random number streams. Each consumer owns a named stream seeded from hash(seed, name, replication), so
// adding a stream or a thread never changes another stream's draws. Every point of a sweep draws from the
// same streams (common random numbers across points, as across policies): a point's numbers do not depend
// on which other points share its sweep, so a point run alone (--set) reproduces its row exactly. The generator is
// xoshiro256++ (Blackman & Vigna) run as kLanes interleaved states: its output is a fixed function of the
// seed on every platform, and the lanes let the compiler keep several draws in flight when filling arrays.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace tailsim {

inline constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// FNV-1a of a name, mixed: stable across platforms and compilers (unlike std::hash).
inline constexpr std::uint64_t hash_name(std::string_view name) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return splitmix64(h);
}

// The seed of one stream: hash(seed, stream name, replication). (The middle mixing round once took the
// sweep point's index; it is kept so that unswept scenarios draw what they always drew.)
inline constexpr std::uint64_t stream_seed(std::uint64_t seed, std::string_view name, std::uint64_t replication) {
  std::uint64_t s = seed;
  std::uint64_t h = splitmix64(s) ^ hash_name(name);
  h = splitmix64(h);
  h = splitmix64(h) ^ (replication * 0x8CB92BA72F3D8DD7ull);
  return splitmix64(h);
}

// A raw 64-bit draw to a uniform in the open interval (0, 1); monotone non-decreasing in the raw value,
// so the largest raw value maps to the largest uniform.
// 52 bits: the largest value, 1 - 2^-53, is still below 1 in double precision.
inline double raw_to_open_uniform(std::uint64_t raw) {
  return (static_cast<double>(raw >> 12) + 0.5) * 0x1.0p-52;
}

class RngStream {
 public:
  static constexpr int kLanes = 4;

  RngStream() : RngStream(0) {}
  explicit RngStream(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (int w = 0; w < 4; ++w)
      for (int l = 0; l < kLanes; ++l) s_[w][l] = splitmix64(sm);
  }
  RngStream(std::uint64_t seed, std::string_view name, std::uint64_t replication)
      : RngStream(stream_seed(seed, name, replication)) {}

  // One raw draw (lanes are used in turn, so single draws and fill() produce the same sequence).
  std::uint64_t next() {
    if (cursor_ == kLanes) {
      advance(buffered_);
      cursor_ = 0;
    }
    return buffered_[cursor_++];
  }
  double uniform() { return raw_to_open_uniform(next()); }

  // Fills `out` with the next out.size() raw draws of the stream.
  void fill(std::span<std::uint64_t> out) {
    std::size_t i = 0;
    while (i < out.size() && cursor_ < kLanes) out[i++] = buffered_[cursor_++];
    const std::size_t whole = (out.size() - i) / kLanes * kLanes;
    for (const std::size_t end = i + whole; i < end; i += kLanes) advance(&out[i]);
    if (i < out.size()) {
      advance(buffered_);
      cursor_ = 0;
      while (i < out.size()) out[i++] = buffered_[cursor_++];
    }
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  void advance(std::uint64_t* out) {
    for (int l = 0; l < kLanes; ++l) {
      out[l] = rotl(s_[0][l] + s_[3][l], 23) + s_[0][l];
      const std::uint64_t t = s_[1][l] << 17;
      s_[2][l] ^= s_[0][l];
      s_[3][l] ^= s_[1][l];
      s_[1][l] ^= s_[2][l];
      s_[0][l] ^= s_[3][l];
      s_[2][l] ^= t;
      s_[3][l] = rotl(s_[3][l], 45);
    }
  }

  std::array<std::array<std::uint64_t, kLanes>, 4> s_{};
  std::uint64_t buffered_[kLanes]{};
  int cursor_ = kLanes;
};

}  // namespace tailsim
