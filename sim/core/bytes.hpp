// Raw bytes of trivially copyable values, for handing results to another process of the same binary (MPI
// ranks): same layout and endianness on both sides, so no format beyond the order of the fields.
#pragma once
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace tailsim {

template <class T>
void put_bytes(std::string& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

inline void take_raw(const std::string& in, std::size_t& pos, void* dst, std::size_t bytes) {
  if (pos + bytes > in.size()) throw std::runtime_error("truncated results from another process");
  std::memcpy(dst, in.data() + pos, bytes);
  pos += bytes;
}

template <class T>
T take_bytes(const std::string& in, std::size_t& pos) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  take_raw(in, pos, &v, sizeof v);
  return v;
}

}  // namespace tailsim
