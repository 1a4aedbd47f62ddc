#include "sim/cost/attention.hpp"

#include <algorithm>

#include "sim/cost/roofline.hpp"

namespace tailsim {

AttentionShape parse_attention_shape(const JsonReader& n) {
  n.expect_object();
  AttentionShape s;
  const Range dims{1.0, 65536.0};
  s.type = n.string("type", {}, {"gqa", "mla"}) == "mla" ? AttentionType::kMla : AttentionType::kGqa;
  s.heads = n.integer("heads", {}, Range{1.0, 4096.0});
  if (s.type == AttentionType::kGqa) {
    s.kv_heads = n.integer("kv_heads", {}, Range{1.0, static_cast<double>(s.heads)});
    if (s.heads % s.kv_heads != 0)
      n.child("kv_heads")
          .fail("expected a divisor of heads (" + std::to_string(s.heads) + "), got " +
                std::to_string(s.kv_heads));
    s.head_dim = n.integer("head_dim", {}, dims);
  } else {
    s.q_lora_rank = n.integer("q_lora_rank", 0, Range{0.0, 65536.0});
    s.kv_lora_rank = n.integer("kv_lora_rank", {}, dims);
    s.qk_nope_head_dim = n.integer("qk_nope_head_dim", {}, dims);
    s.qk_rope_head_dim = n.integer("qk_rope_head_dim", {}, Range{0.0, 65536.0});
    s.v_head_dim = n.integer("v_head_dim", {}, dims);
  }
  n.finish();
  return s;
}

double causal_pairs(std::int64_t tokens, std::int64_t prompt_length) {
  const auto triangle = [](std::int64_t l) {
    return static_cast<double>(l) * static_cast<double>(l + 1) / 2.0;
  };
  return static_cast<double>(tokens / prompt_length) * triangle(prompt_length) +
         triangle(tokens % prompt_length);
}

AttentionWork prefill_attention(const AttentionShape& s, std::int64_t tokens, std::int64_t prompt_length,
                                double bytes_per_element) {
  const double p = causal_pairs(tokens, prompt_length), t = static_cast<double>(tokens);
  const double h = static_cast<double>(s.heads);
  AttentionWork w;
  if (s.type == AttentionType::kGqa) {
    const double d = static_cast<double>(s.head_dim), g = static_cast<double>(s.kv_heads);
    w.flops = 4.0 * h * d * p;
    w.bytes = (2.0 * h * d + 2.0 * g * d) * t * bytes_per_element;
  } else {
    const double qk = static_cast<double>(s.qk_nope_head_dim + s.qk_rope_head_dim),
                 v = static_cast<double>(s.v_head_dim);
    w.flops = 2.0 * h * qk * p + 2.0 * h * v * p;
    w.bytes = (2.0 * qk + 2.0 * v) * h * t * bytes_per_element;
  }
  return w;
}

AttentionWork decode_attention(const AttentionShape& s, double kv_entries, double bytes_per_element) {
  const double h = static_cast<double>(s.heads);
  AttentionWork w;
  if (s.type == AttentionType::kGqa) {
    const double d = static_cast<double>(s.head_dim), g = static_cast<double>(s.kv_heads);
    w.flops = 4.0 * h * d * kv_entries;
    w.bytes = 2.0 * g * d * kv_entries * bytes_per_element;
  } else {
    const double c = static_cast<double>(s.kv_lora_rank), r = static_cast<double>(s.qk_rope_head_dim);
    w.flops = 2.0 * h * (c + r) * kv_entries + 2.0 * h * c * kv_entries;
    w.bytes = (c + r) * kv_entries * bytes_per_element;
  }
  return w;
}

double AttentionRoofline::time_s(const AttentionWork& w) const {
  if (w.flops <= 0 && w.bytes <= 0) return 0.0;
  return overhead_s + std::max(w.flops / peak_flops, w.bytes / bandwidth_bytes_per_s);
}

AttentionRoofline attention_roofline(const GpuSpec& gpu, const std::string& dtype) {
  const double peak = peak_flops_for(gpu, dtype) > 0 ? peak_flops_for(gpu, dtype) : gpu.peak_flops_bf16;
  return {peak * kDefaultComputeEfficiency, gpu.memory_bandwidth_bytes_per_s * kDefaultMemoryEfficiency,
          kDefaultLaunchOverheadS};
}

std::string core_attention_dtype(const std::string& model_dtype) { return model_dtype == "fp8" ? "bf16" : model_dtype; }

}  // namespace tailsim
