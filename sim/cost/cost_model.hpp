// Kernel cost models: the service time of one MoE expert's FFN for n tokens, given the expert's shape, its
// dtype and the GPU. Cost models are pure functions of their inputs (no state, no randomness).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/cost/gpu_spec.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/config/registry.hpp"
#include "sim/core/held_bytes.hpp"

namespace tailsim {

// One expert FFN. Gated (SwiGLU): w1 and w3 (hidden -> intermediate), SiLU(w1 x) * (w3 x), then w2
// (intermediate -> hidden). Ungated: w1, activation, w2.
struct ExpertShape {
  std::int64_t hidden = 0;
  std::int64_t intermediate = 0;
  bool gated = true;
  std::string dtype = "bf16";  // fp16, bf16 or fp8

  double bytes_per_element() const { return dtype == "fp8" ? 1.0 : 2.0; }
  double weight_bytes() const {
    return (gated ? 3.0 : 2.0) * static_cast<double>(hidden) * static_cast<double>(intermediate) * bytes_per_element();
  }
  // Multiply-add FLOPs of the FFN's GEMMs for `tokens` tokens (2 per multiply-add).
  double flops(double tokens) const {
    return 2.0 * tokens * static_cast<double>(hidden) * static_cast<double>(intermediate) * (gated ? 3.0 : 2.0);
  }
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual std::string kind() const = 0;  // "profiled", "roofline" or "fitted"
  // Seconds for one expert's whole FFN on `tokens` tokens (tokens >= 0; 0 tokens cost 0).
  virtual double expert_time_s(std::int64_t tokens) const = 0;
  // Seconds for all of one GPU's local experts run as one grouped kernel: each activated expert (tokens > 0)
  // streams its weights once, and compute follows the tokens.
  virtual double grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) const = 0;
  // Counts the bytes the model holds besides its own object (a profiled table and its lookup array), for the
  // memory estimate of a scenario, where every sweep point holds its own.
  virtual void count_held(HeldBytes&) const {}
};

struct CostContext {
  GpuSpec gpu;
  ExpertShape shape;
};

struct ProfileTable;
// The expert shape a table was measured for, from its '# hidden:' and '# intermediate:' metadata (nullopt when
// either is absent), '# gated:' (default true) and '# dtype:' (default `default_dtype`).
std::optional<ExpertShape> measured_shape(const ProfileTable& table, const std::string& default_dtype);

using CostModelRegistry = Registry<CostModel, const CostContext&>;
const CostModelRegistry& cost_model_registry();
std::unique_ptr<CostModel> make_cost_model(const JsonReader& node, const CostContext& context);

}  // namespace tailsim
