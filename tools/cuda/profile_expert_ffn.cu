// profile_expert_ffn: measure one gated MoE expert FFN on a GPU over a grid of token counts.
//
// For n tokens routed to the expert (row-major, PyTorch nn.Linear weight layout):
//   H1 = X[n,hidden] * W1^T     (W1: [intermediate, hidden])   cuBLAS GEMM
//   H3 = X[n,hidden] * W3^T     (W3: [intermediate, hidden])   cuBLAS GEMM
//   A  = SiLU(H1) * H3          ([n, intermediate])            small CUDA kernel
//   Y  = A * W2^T               (W2: [hidden, intermediate])   cuBLAS GEMM
// Inputs/outputs are bf16 or fp16, accumulation fp32 (CUBLAS_COMPUTE_32F).
//
// Each component and the whole FFN are timed with CUDA events; the median over --runs timed runs (after
// --warmup untimed runs) is reported in microseconds. By default the L2 cache is flushed before every run
// (outside the timed region), so weights are streamed from HBM as they are when many experts/layers run.
//
// Output: CSV with '#' metadata lines ("# key: value"), then the header
//   tokens,time_us,w1_us,w3_us,act_us,w2_us
// written to a temporary file and renamed into place only when complete.
//
// Exit codes: 0 ok, 1 CUDA/cuBLAS/IO error, 2 no CUDA device, 64 bad command line.
//
// Build: nvcc -std=c++17 -O2 -arch=sm_90 tools/cuda/profile_expert_ffn.cu -lcublas -lcublasLt -o profile_expert_ffn
// (or the CMake target profile_expert_ffn). See tools/cuda/README.md.

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

constexpr const char* kToolName = "profile_expert_ffn";
constexpr const char* kToolVersion = "1.0";

// ---------------------------------------------------------------------------------------------------------
// Error handling

[[noreturn]] void die(int code, const std::string& msg) {
  std::fprintf(stderr, "%s: error: %s\n", kToolName, msg.c_str());
  std::exit(code);
}

void check_cuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) {
    die(1, std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
               cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
}

void check_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    die(1, std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
               cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ")");
  }
}

#define CUDA_CHECK(expr) check_cuda((expr), #expr, __FILE__, __LINE__)
#define CUBLAS_CHECK(expr) check_cublas((expr), #expr, __FILE__, __LINE__)
#define CUDA_CHECK_LAUNCH(name) check_cuda(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

// ---------------------------------------------------------------------------------------------------------
// Command line

enum class DType { bf16, fp16 };

struct Options {
  DType dtype = DType::bf16;
  long long hidden = 4096;
  long long intermediate = 14336;  // Mixtral-8x7B expert
  std::vector<long long> tokens;
  int runs = 50;
  int warmup = 10;
  int device = 0;
  bool flush_l2 = true;
  std::string out;  // empty: stdout
  std::string gpu_name;
};

std::vector<long long> default_tokens() {
  return {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048};
}

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: %s [options]\n"
               "  --dtype bf16|fp16        input/output type, fp32 accumulation (default bf16)\n"
               "  --hidden N               model hidden size (default 4096)\n"
               "  --intermediate N         expert intermediate size (default 14336, Mixtral-8x7B)\n"
               "  --tokens a,b,c           token counts (default 1,2,3,4,6,8,12,...,1536,2048)\n"
               "  --runs N                 timed runs per point, median reported, >= 20 (default 50)\n"
               "  --warmup N               untimed runs per point (default 10)\n"
               "  --device N               CUDA device ordinal (default 0)\n"
               "  --no-flush-l2            do not flush the L2 cache before each run\n"
               "  --out FILE               CSV output (default stdout); written atomically\n"
               "  --gpu-name NAME          override the GPU name recorded in the metadata\n"
               "  -h, --help               this help\n",
               kToolName);
}

[[noreturn]] void bad_arg(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", kToolName, msg.c_str());
  usage(stderr);
  std::exit(64);
}

long long parse_int(const std::string& s, const char* opt, long long lo, long long hi) {
  if (s.empty()) bad_arg(std::string("empty value for ") + opt);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0') bad_arg(std::string("bad integer for ") + opt + ": '" + s + "'");
  if (v < lo || v > hi) {
    bad_arg(std::string(opt) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + s);
  }
  return v;
}

std::vector<long long> parse_tokens(const std::string& s) {
  std::vector<long long> v;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    v.push_back(parse_int(item, "--tokens", 1, 1LL << 24));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* opt) -> std::string {
      if (i + 1 >= argc) bad_arg(std::string("missing value for ") + opt);
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--dtype") {
      const std::string d = value("--dtype");
      if (d == "bf16") {
        o.dtype = DType::bf16;
      } else if (d == "fp16") {
        o.dtype = DType::fp16;
      } else {
        bad_arg("--dtype must be bf16 or fp16, got '" + d + "'");
      }
    } else if (a == "--hidden") {
      o.hidden = parse_int(value("--hidden"), "--hidden", 1, 1LL << 20);
    } else if (a == "--intermediate") {
      o.intermediate = parse_int(value("--intermediate"), "--intermediate", 1, 1LL << 20);
    } else if (a == "--tokens") {
      o.tokens = parse_tokens(value("--tokens"));
    } else if (a == "--runs") {
      o.runs = static_cast<int>(parse_int(value("--runs"), "--runs", 20, 100000));
    } else if (a == "--warmup") {
      o.warmup = static_cast<int>(parse_int(value("--warmup"), "--warmup", 0, 100000));
    } else if (a == "--device") {
      o.device = static_cast<int>(parse_int(value("--device"), "--device", 0, 1024));
    } else if (a == "--no-flush-l2") {
      o.flush_l2 = false;
    } else if (a == "--out") {
      o.out = value("--out");
      if (o.out.empty()) bad_arg("--out needs a file name");
    } else if (a == "--gpu-name") {
      o.gpu_name = value("--gpu-name");
    } else {
      bad_arg("unknown option '" + a + "'");
    }
  }
  if (o.tokens.empty()) o.tokens = default_tokens();
  // cuBLAS takes int dimensions and leading dimensions; keep every matrix element count in int64 too.
  const long long max_t = o.tokens.back();
  if (o.hidden > INT32_MAX || o.intermediate > INT32_MAX || max_t > INT32_MAX) bad_arg("dimension too large");
  return o;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") ==
                        std::string::npos) {
    return s;
  }
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += shell_quote(argv[i]);
  }
  return s;
}

// Metadata values are single-line: replace CR/LF so a value can never start a new CSV row.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string version_string(int v) {  // CUDA encodes 12040 as 12.4
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// ---------------------------------------------------------------------------------------------------------
// Device kernels

__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half(x);
}

__device__ __forceinline__ std::uint32_t hash32(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<std::uint32_t>(x);
}

// Deterministic pseudo-random fill, uniform in [-scale, scale].
template <typename T>
__global__ void fill_uniform(T* p, long long n, std::uint64_t seed, float scale) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float u = static_cast<float>(hash32(seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(i))) *
                    (1.0f / 4294967296.0f);
    p[i] = from_float<T>((2.0f * u - 1.0f) * scale);
  }
}

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + __expf(-g)) * u; }

// A = SiLU(H1) * H3, elementwise over n elements, 8 elements (16 bytes) per thread per step.
// Requires n % 8 == 0 and 16-byte aligned pointers (checked on the host).
template <typename T>
__global__ void silu_mul_vec8(const T* __restrict__ h1, const T* __restrict__ h3, T* __restrict__ out, long long n) {
  const long long n8 = n / 8;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n8; i += stride) {
    const uint4 g4 = reinterpret_cast<const uint4*>(h1)[i];
    const uint4 u4 = reinterpret_cast<const uint4*>(h3)[i];
    uint4 o4;
    const T* g = reinterpret_cast<const T*>(&g4);
    const T* u = reinterpret_cast<const T*>(&u4);
    T* o = reinterpret_cast<T*>(&o4);
#pragma unroll
    for (int k = 0; k < 8; ++k) o[k] = from_float<T>(silu_mul(to_float(g[k]), to_float(u[k])));
    reinterpret_cast<uint4*>(out)[i] = o4;
  }
}

// Scalar fallback for sizes that are not a multiple of 8.
template <typename T>
__global__ void silu_mul_scalar(const T* __restrict__ h1, const T* __restrict__ h3, T* __restrict__ out,
                                long long n) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = from_float<T>(silu_mul(to_float(h1[i]), to_float(h3[i])));
  }
}

// Busy-wait on the GPU so the host can enqueue a whole batch of timed runs before the GPU reaches them
// (otherwise host launch latency can leak into the event timings of small problems).
__global__ void spin_kernel(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// ---------------------------------------------------------------------------------------------------------
// Host-side reference helpers (for a small correctness check of the GEMM layouts)

float bf16_bits_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

float fp16_bits_to_float(std::uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  }
  return sign ? -v : v;
}

// ---------------------------------------------------------------------------------------------------------
// The profiler

struct Sample {
  long long tokens;
  double total_us, w1_us, w3_us, act_us, w2_us;
};

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? static_cast<double>(v[n / 2]) : 0.5 * (static_cast<double>(v[n / 2 - 1]) + v[n / 2]);
}

struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int sm_clock_khz = 0;
  int mem_clock_khz = 0;
  int bus_width_bits = 0;
  int l2_bytes = 0;
  std::size_t total_mem = 0;
  std::string pci_bus_id;
  std::string uuid;
  std::string device_name;  // as reported by the driver, even with --gpu-name
  int runtime_version = 0, driver_version = 0;
  std::string cublas_version, cublaslt_version;
};

class Profiler {
 public:
  Profiler(const Options& opt, const DeviceInfo& info) : opt_(opt), info_(info) {
    elem_ = 2;  // bf16 and fp16
    cuda_type_ = opt.dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
    const long long h = opt.hidden, im = opt.intermediate, t = opt.tokens.back();

    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&handle_));
    CUBLAS_CHECK(cublasSetStream(handle_, stream_));
    // An explicit workspace (32 MiB, NVIDIA's recommendation for Hopper) so cuBLAS never allocates while timed.
    workspace_bytes_ = 32u << 20;
    CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
    CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_, workspace_bytes_));

    std::size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const std::size_t need = elem_ * static_cast<std::size_t>(3 * h * im + 2 * t * h + 3 * t * im) +
                             (opt.flush_l2 ? flush_bytes() : 0);
    if (need > free_b) {
      die(1, "not enough GPU memory: need " + std::to_string(need >> 20) + " MiB, free " +
                 std::to_string(free_b >> 20) + " MiB (reduce --tokens or the shape)");
    }

    w1_ = alloc(im * h);
    w3_ = alloc(im * h);
    w2_ = alloc(h * im);
    x_ = alloc(t * h);
    y_ = alloc(t * h);
    h1_ = alloc(t * im);
    h3_ = alloc(t * im);
    a_ = alloc(t * im);
    if (opt.flush_l2) CUDA_CHECK(cudaMalloc(&flush_, flush_bytes()));

    // Roughly unit-variance activations: weights scaled by 1/sqrt(fan_in) (uniform [-s, s] has var s^2/3).
    fill(x_, t * h, 1, 1.0f);
    fill(w1_, im * h, 2, std::sqrt(3.0f / static_cast<float>(h)));
    fill(w3_, im * h, 3, std::sqrt(3.0f / static_cast<float>(h)));
    fill(w2_, h * im, 4, std::sqrt(3.0f / static_cast<float>(im)));
    CUDA_CHECK(cudaMemsetAsync(y_, 0, elem_ * static_cast<std::size_t>(t * h), stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));

    for (auto& e : ev_) e.resize(static_cast<std::size_t>(opt.runs));
    for (auto& evs : ev_) {
      for (auto& e : evs) CUDA_CHECK(cudaEventCreate(&e));
    }
    spin_cycles_per_us_ = info.sm_clock_khz > 0 ? info.sm_clock_khz / 1000.0 : 2000.0;
  }

  ~Profiler() {
    // Best-effort cleanup; errors here are not interesting (the process is exiting).
    for (auto& evs : ev_) {
      for (auto& e : evs) cudaEventDestroy(e);
    }
    for (void* p : {w1_, w3_, w2_, x_, y_, h1_, h3_, a_, flush_, workspace_}) cudaFree(p);
    if (handle_) cublasDestroy(handle_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Compare a few outputs of H1 and Y for the given token count against a host dot product.
  void verify(long long n) {
    run_ffn(n, nullptr);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    const long long h = opt_.hidden, im = opt_.intermediate;
    const long long row = n - 1;  // last token row: exercises the leading dimensions
    std::vector<std::uint16_t> xr(static_cast<std::size_t>(h)), ar(static_cast<std::size_t>(im));
    std::vector<std::uint16_t> wr(static_cast<std::size_t>(std::max(h, im)));
    copy_down(xr.data(), x_, row * h, h);
    copy_down(ar.data(), a_, row * im, im);
    const long long cols_h1[] = {0, im / 3, im - 1};
    const long long cols_y[] = {0, h / 2, h - 1};
    for (long long j : cols_h1) {
      copy_down(wr.data(), w1_, j * h, h);
      std::uint16_t got = 0;
      copy_down(&got, h1_, row * im + j, 1);
      check_dot("H1", xr.data(), wr.data(), h, got);
    }
    for (long long j : cols_y) {
      copy_down(wr.data(), w2_, j * im, im);
      std::uint16_t got = 0;
      copy_down(&got, y_, row * h + j, 1);
      check_dot("Y", ar.data(), wr.data(), im, got);
    }
  }

  Sample measure(long long n) {
    for (int i = 0; i < opt_.warmup; ++i) {
      flush_l2();
      run_ffn(n, nullptr);
    }
    // Let the host run ahead of the GPU: a spin long enough to cover enqueueing all timed runs.
    const double spin_us = 2000.0 + 100.0 * opt_.runs;
    spin_kernel<<<1, 1, 0, stream_>>>(static_cast<long long>(spin_us * spin_cycles_per_us_));
    CUDA_CHECK_LAUNCH("spin_kernel");
    for (int r = 0; r < opt_.runs; ++r) {
      flush_l2();
      cudaEvent_t evs[5];
      for (int k = 0; k < 5; ++k) evs[k] = ev_[k][static_cast<std::size_t>(r)];
      run_ffn(n, evs);
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_));

    std::vector<float> total, w1, w3, act, w2;
    for (int r = 0; r < opt_.runs; ++r) {
      const auto i = static_cast<std::size_t>(r);
      total.push_back(elapsed_us(ev_[0][i], ev_[4][i]));
      w1.push_back(elapsed_us(ev_[0][i], ev_[1][i]));
      w3.push_back(elapsed_us(ev_[1][i], ev_[2][i]));
      act.push_back(elapsed_us(ev_[2][i], ev_[3][i]));
      w2.push_back(elapsed_us(ev_[3][i], ev_[4][i]));
    }
    return Sample{n, median(total), median(w1), median(w3), median(act), median(w2)};
  }

  std::size_t flush_bytes() const {
    // Twice the L2 size (at least 64 MiB) evicts everything the previous run left in L2.
    return std::max<std::size_t>(2 * static_cast<std::size_t>(info_.l2_bytes), 64u << 20);
  }

 private:
  void* alloc(long long elems) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, elem_ * static_cast<std::size_t>(elems)));
    return p;
  }

  void fill(void* p, long long n, std::uint64_t seed, float scale) {
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<long long>((n + threads - 1) / threads, 65535));
    if (opt_.dtype == DType::bf16) {
      fill_uniform<<<blocks, threads, 0, stream_>>>(static_cast<__nv_bfloat16*>(p), n, seed, scale);
    } else {
      fill_uniform<<<blocks, threads, 0, stream_>>>(static_cast<__half*>(p), n, seed, scale);
    }
    CUDA_CHECK_LAUNCH("fill_uniform");
  }

  void copy_down(std::uint16_t* dst, const void* src, long long offset_elems, long long elems) {
    CUDA_CHECK(cudaMemcpy(dst, static_cast<const char*>(src) + elem_ * static_cast<std::size_t>(offset_elems),
                          elem_ * static_cast<std::size_t>(elems), cudaMemcpyDeviceToHost));
  }

  float to_host_float(std::uint16_t b) const {
    return opt_.dtype == DType::bf16 ? bf16_bits_to_float(b) : fp16_bits_to_float(b);
  }

  void check_dot(const char* what, const std::uint16_t* a, const std::uint16_t* b, long long k, std::uint16_t got) {
    double ref = 0.0, mag = 0.0;
    for (long long i = 0; i < k; ++i) {
      const double p = static_cast<double>(to_host_float(a[i])) * to_host_float(b[i]);
      ref += p;
      mag += std::fabs(p);
    }
    const double g = to_host_float(got);
    const double tol = 1e-2 * std::fabs(ref) + 2e-3 * mag + 1e-6;
    if (!std::isfinite(g) || std::fabs(g - ref) > tol) {
      die(1, std::string("verification of ") + what + " failed: got " + std::to_string(g) + ", expected " +
                 std::to_string(ref) + " (GEMM layout or cuBLAS problem)");
    }
  }

  void flush_l2() {
    if (flush_) CUDA_CHECK(cudaMemsetAsync(flush_, 0, flush_bytes(), stream_));
  }

  // Row-major Y[n, out] = X[n, in] * W^T with W[out, in] row-major (nn.Linear). In cuBLAS's column-major
  // view that is Y^T[out, n] = op_T(W)[out, in] * X^T[in, n]: transa = T, transb = N, m = out, k = in.
  void linear(const void* x, const void* w, void* y, long long n, long long in, long long out) {
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(n),
                              static_cast<int>(in), &alpha, w, cuda_type_, static_cast<int>(in), x, cuda_type_,
                              static_cast<int>(in), &beta, y, cuda_type_, static_cast<int>(out),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  void activation(long long n) {
    const long long elems = n * opt_.intermediate;
    const int threads = 256;
    const int max_blocks = info_.sm_count > 0 ? info_.sm_count * 16 : 2048;
    const bool vec = elems % 8 == 0;  // cudaMalloc pointers are 256-byte aligned
    const long long work = vec ? elems / 8 : elems;
    const int blocks = static_cast<int>(std::min<long long>((work + threads - 1) / threads, max_blocks));
    if (opt_.dtype == DType::bf16) {
      launch_act(static_cast<const __nv_bfloat16*>(h1_), static_cast<const __nv_bfloat16*>(h3_),
                 static_cast<__nv_bfloat16*>(a_), elems, vec, blocks, threads);
    } else {
      launch_act(static_cast<const __half*>(h1_), static_cast<const __half*>(h3_), static_cast<__half*>(a_), elems,
                 vec, blocks, threads);
    }
  }

  template <typename T>
  void launch_act(const T* h1, const T* h3, T* out, long long elems, bool vec, int blocks, int threads) {
    if (vec) {
      silu_mul_vec8<<<blocks, threads, 0, stream_>>>(h1, h3, out, elems);
    } else {
      silu_mul_scalar<<<blocks, threads, 0, stream_>>>(h1, h3, out, elems);
    }
    CUDA_CHECK_LAUNCH("silu_mul");
  }

  // One expert FFN; with ev != nullptr, events are recorded before w1 and after w1, w3, act and w2.
  void run_ffn(long long n, cudaEvent_t* ev) {
    const long long h = opt_.hidden, im = opt_.intermediate;
    if (ev) CUDA_CHECK(cudaEventRecord(ev[0], stream_));
    linear(x_, w1_, h1_, n, h, im);
    if (ev) CUDA_CHECK(cudaEventRecord(ev[1], stream_));
    linear(x_, w3_, h3_, n, h, im);
    if (ev) CUDA_CHECK(cudaEventRecord(ev[2], stream_));
    activation(n);
    if (ev) CUDA_CHECK(cudaEventRecord(ev[3], stream_));
    linear(a_, w2_, y_, n, im, h);
    if (ev) CUDA_CHECK(cudaEventRecord(ev[4], stream_));
  }

  static float elapsed_us(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms * 1000.0f;
  }

  const Options& opt_;
  const DeviceInfo& info_;
  std::size_t elem_ = 2;
  cudaDataType_t cuda_type_ = CUDA_R_16BF;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  void *w1_ = nullptr, *w3_ = nullptr, *w2_ = nullptr, *x_ = nullptr, *y_ = nullptr;
  void *h1_ = nullptr, *h3_ = nullptr, *a_ = nullptr, *flush_ = nullptr;
  std::vector<cudaEvent_t> ev_[5];
  double spin_cycles_per_us_ = 2000.0;
};

DeviceInfo query_device(const Options& opt) {
  DeviceInfo d;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, opt.device));
  d.device_name = prop.name;
  d.name = opt.gpu_name.empty() ? d.device_name : opt.gpu_name;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.sm_count = prop.multiProcessorCount;
  d.total_mem = prop.totalGlobalMem;
  d.l2_bytes = prop.l2CacheSize;
  // clockRate / memoryClockRate / memoryBusWidth left cudaDeviceProp in CUDA 13: use the attributes.
  CUDA_CHECK(cudaDeviceGetAttribute(&d.sm_clock_khz, cudaDevAttrClockRate, opt.device));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.mem_clock_khz, cudaDevAttrMemoryClockRate, opt.device));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, opt.device));
  char bus[64] = {0};
  CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, opt.device));
  d.pci_bus_id = bus;
  char uuid[64];
  std::string u = "GPU-";
  for (int i = 0; i < 16; ++i) {
    std::snprintf(uuid, sizeof uuid, "%02x", static_cast<unsigned char>(prop.uuid.bytes[i]));
    u += uuid;
    if (i == 3 || i == 5 || i == 7 || i == 9) u += '-';
  }
  d.uuid = u;
  CUDA_CHECK(cudaRuntimeGetVersion(&d.runtime_version));
  CUDA_CHECK(cudaDriverGetVersion(&d.driver_version));
  int maj = 0, mnr = 0, pat = 0;
  CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &maj));
  CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &mnr));
  CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &pat));
  d.cublas_version = std::to_string(maj) + "." + std::to_string(mnr) + "." + std::to_string(pat);
  CUBLAS_CHECK(cublasLtGetProperty(MAJOR_VERSION, &maj));
  CUBLAS_CHECK(cublasLtGetProperty(MINOR_VERSION, &mnr));
  CUBLAS_CHECK(cublasLtGetProperty(PATCH_LEVEL, &pat));
  d.cublaslt_version = std::to_string(maj) + "." + std::to_string(mnr) + "." + std::to_string(pat);
  return d;
}

std::string format_us(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string render_csv(const Options& opt, const DeviceInfo& d, const std::string& cmdline, const std::string& date,
                       const std::vector<Sample>& samples) {
  std::string s;
  auto meta = [&](const char* k, const std::string& v) { s += std::string("# ") + k + ": " + one_line(v) + "\n"; };
  const double peak_bw_gbs = 2.0 * d.mem_clock_khz * 1e3 * (d.bus_width_bits / 8.0) / 1e9;  // DDR
  char bw[32];
  std::snprintf(bw, sizeof bw, "%.1f", peak_bw_gbs);
  meta("format", "tailsim profiled expert-FFN table v1");
  meta("tool", std::string(kToolName) + " " + kToolVersion);
  meta("command", cmdline);
  meta("date", date);
  meta("gpu", d.name);
  meta("gpu_device_name", d.device_name);
  meta("gpu_uuid", d.uuid);
  meta("pci_bus_id", d.pci_bus_id);
  meta("compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
  meta("sm_count", std::to_string(d.sm_count));
  meta("sm_clock_mhz", std::to_string(d.sm_clock_khz / 1000));
  meta("mem_clock_mhz", std::to_string(d.mem_clock_khz / 1000));
  meta("mem_bus_width_bits", std::to_string(d.bus_width_bits));
  meta("mem_peak_bw_gbs", bw);
  meta("l2_bytes", std::to_string(d.l2_bytes));
  meta("total_mem_bytes", std::to_string(d.total_mem));
  meta("cuda_runtime", version_string(d.runtime_version));
  meta("cuda_driver", version_string(d.driver_version));
  meta("cublas", d.cublas_version);
  meta("cublaslt", d.cublaslt_version);
  meta("dtype", opt.dtype == DType::bf16 ? "bf16" : "fp16");
  meta("accumulate", "fp32");
  meta("hidden", std::to_string(opt.hidden));
  meta("intermediate", std::to_string(opt.intermediate));
  meta("gated", "true (w1, w3: hidden->intermediate; act: SiLU(w1 x)*(w3 x); w2: intermediate->hidden)");
  meta("runs", std::to_string(opt.runs));
  meta("warmup", std::to_string(opt.warmup));
  meta("statistic", "median");
  meta("flush_l2", opt.flush_l2 ? "true" : "false");
  meta("unit", "us");
  meta("source", "measured with CUDA events around cublasGemmEx (CUBLAS_COMPUTE_32F) and a SiLU*mul kernel");
  s += "tokens,time_us,w1_us,w3_us,act_us,w2_us\n";
  for (const Sample& x : samples) {
    s += std::to_string(x.tokens) + "," + format_us(x.total_us) + "," + format_us(x.w1_us) + "," +
         format_us(x.w3_us) + "," + format_us(x.act_us) + "," + format_us(x.w2_us) + "\n";
  }
  return s;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long long>(getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) die(1, "cannot open '" + tmp + "' for writing: " + std::strerror(errno));
  const bool ok_write = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool ok_flush = std::fflush(f) == 0;
  const bool ok_close = std::fclose(f) == 0;
  if (!ok_write || !ok_flush || !ok_close) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    die(1, "cannot write '" + tmp + "': " + err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    die(1, "cannot rename '" + tmp + "' to '" + path + "': " + err);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const std::string cmdline = command_line(argc, argv);

  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess || count == 0) {
    std::fprintf(stderr, "%s: no CUDA device found", kToolName);
    if (ce != cudaSuccess) std::fprintf(stderr, " (%s: %s)", cudaGetErrorName(ce), cudaGetErrorString(ce));
    std::fprintf(stderr, "\n");
    return 2;
  }
  if (opt.device >= count) {
    die(64, "--device " + std::to_string(opt.device) + " but only " + std::to_string(count) + " device(s)");
  }
  CUDA_CHECK(cudaSetDevice(opt.device));

  const DeviceInfo info = query_device(opt);
  const std::string date = utc_now_iso8601();
  std::vector<Sample> samples;
  {
    Profiler prof(opt, info);
    std::fprintf(stderr, "%s: %s, %s, hidden=%lld intermediate=%lld, %zu token counts, %d runs (+%d warm-up)\n",
                 kToolName, info.name.c_str(), opt.dtype == DType::bf16 ? "bf16" : "fp16", opt.hidden,
                 opt.intermediate, opt.tokens.size(), opt.runs, opt.warmup);
    prof.verify(opt.tokens.front());
    prof.verify(opt.tokens.back());
    for (long long n : opt.tokens) {
      const Sample s = prof.measure(n);
      std::fprintf(stderr, "  tokens=%-6lld ffn=%10.3f us  (w1 %.3f, w3 %.3f, act %.3f, w2 %.3f)\n", n, s.total_us,
                   s.w1_us, s.w3_us, s.act_us, s.w2_us);
      samples.push_back(s);
    }
  }

  const std::string text = render_csv(opt, info, cmdline, date, samples);
  if (opt.out.empty()) {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
      die(1, "cannot write to stdout");
    }
  } else {
    write_atomically(opt.out, text);
    std::fprintf(stderr, "%s: wrote %s\n", kToolName, opt.out.c_str());
  }
  return 0;
}
