// A GPU's figures from configs/gpus/: what cost models (pure functions of a GPU and a kernel shape) need,
// without the cluster it sits in.
#pragma once
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"

namespace tailsim {

struct GpuSpec {
  std::string name;
  int sm_count = 0;
  double boost_clock_mhz = 0;
  double memory_bytes = 0;
  double memory_bandwidth_bytes_per_s = 0;
  double peak_flops_fp16 = 0;  // dense tensor FLOP/s
  double peak_flops_bf16 = 0;
  double peak_flops_fp8 = 0;   // 0 where the GPU has no FP8 tensor cores
  double nvlink_bandwidth_bytes_per_s = 0;  // bidirectional, per GPU (as datasheets give it)
  // The GPU's link to host memory (PCIe), one direction; 0 where the file gives none ("host_link_bandwidth").
  double host_link_bandwidth_bytes_per_s = 0;
  std::string source;          // where the figures come from
};
GpuSpec parse_gpu_spec(const JsonReader& node);
std::vector<std::string> gpu_names();

}  // namespace tailsim
