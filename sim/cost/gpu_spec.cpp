#include "sim/cost/gpu_spec.hpp"

#include "sim/config/configs.hpp"

namespace tailsim {

GpuSpec parse_gpu_spec(const JsonReader& n) {
  GpuSpec g;
  // Every missing key is named at once: an inline GPU object is written from a datasheet in one go.
  n.mark_known({"description", "host_link_bandwidth"});
  n.require_all({"name", "sm_count", "boost_clock_mhz", "memory", "memory_bandwidth", "peak_tflops",
                 "nvlink_bandwidth", "source"});
  g.name = n.string("name");
  n.string("description", "");
  g.sm_count = static_cast<int>(n.integer("sm_count", {}, at_least(1)));
  g.boost_clock_mhz = n.number("boost_clock_mhz", {}, above(0));
  g.memory_bytes = n.size_bytes("memory", {}, above(0));
  g.memory_bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("memory_bandwidth", {}, above(0));
  const JsonReader peak = n.child("peak_tflops");
  peak.mark_known({"fp8", "fp32"});
  peak.require_all({"fp16", "bf16"});  // so a missing fp16 is called missing, not bf16 a misspelling of it
  g.peak_flops_fp16 = peak.number("fp16", {}, above(0)) * 1e12;
  g.peak_flops_bf16 = peak.number("bf16", {}, above(0)) * 1e12;
  g.peak_flops_fp8 = peak.number("fp8", 0.0, at_least(0)) * 1e12;
  peak.number("fp32", 0.0, at_least(0));
  peak.finish();
  g.nvlink_bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("nvlink_bandwidth", {}, above(0));
  g.host_link_bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("host_link_bandwidth", 0.0, above(0));
  g.source = n.string("source");
  n.finish();
  return g;
}

std::vector<std::string> gpu_names() { return config_names("gpus"); }

}  // namespace tailsim
