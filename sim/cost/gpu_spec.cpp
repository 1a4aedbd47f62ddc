#include "sim/cost/gpu_spec.hpp"

#include "sim/config/configs.hpp"

namespace tailsim {

GpuSpec parse_gpu_spec(const JsonReader& n) {
  GpuSpec g;
  g.name = n.string("name");
  n.string("description", "");
  g.sm_count = static_cast<int>(n.integer("sm_count", {}, at_least(1)));
  g.boost_clock_mhz = n.number("boost_clock_mhz", {}, above(0));
  g.memory_bytes = n.size_bytes("memory", {}, above(0));
  g.memory_bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("memory_bandwidth", {}, above(0));
  const JsonReader peak = n.child("peak_tflops");
  peak.expect_object();
  g.peak_flops_fp16 = peak.number("fp16", {}, above(0)) * 1e12;
  g.peak_flops_bf16 = peak.number("bf16", {}, above(0)) * 1e12;
  g.peak_flops_fp8 = peak.number("fp8", 0.0, at_least(0)) * 1e12;
  peak.number("fp32", 0.0, at_least(0));
  peak.finish();
  g.nvlink_bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("nvlink_bandwidth", {}, above(0));
  g.source = n.string("source");
  n.finish();
  return g;
}

std::vector<std::string> gpu_names() { return config_names("gpus"); }

}  // namespace tailsim
