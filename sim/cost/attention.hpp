// Core attention of a transformer layer (the score and value products, not the projections, which the moe
// workload costs as dense GEMMs from attention_params_per_layer): FLOPs and bytes from the model's attention
// type and the phase's shape, and a roofline time on a GPU. Pure functions, like the other cost models.
//
// Per layer and GPU, with p the (query, key) pairs attended and b the bytes per element of the model's dtype:
//   GQA prefill  FLOPs 4 h d p                          (QK^T and PV, 2 per multiply-add)
//                bytes (2 h d + 2 g d) T b              (Q read and O written once, K and V read once: flash)
//   MLA prefill  FLOPs 2 h (n + r) p + 2 h v p          (non-absorbed: per-head keys of n + r, values of v)
//                bytes (2 (n + r) + 2 v) h T b          (Q, K, V read and O written, per head)
//   GQA decode   FLOPs 4 h d S, bytes 2 g d S b         (memory bound: the KV cache is read once)
//   MLA decode   FLOPs 2 h (c + r) S + 2 h c S          (absorbed: scores and values in the latent space)
//                bytes (c + r) S b                      (the compressed latent cache, shared by the heads)
// where h heads, g KV heads, d head_dim, n qk_nope_head_dim, r qk_rope_head_dim, v v_head_dim, c
// kv_lora_rank; in prefill T tokens are cut into prompt_length-token sequences (the last one shorter when T
// is not a multiple), each causal: a sequence of L tokens attends to L (L + 1) / 2 pairs; in decode S is the
// sum over the GPU's requests of the KV entries each new token attends to (Q reads and O writes, 2 h d per
// request, are left out). Time = overhead + max(FLOPs / peak, bytes / bandwidth), with the default roofline's
// efficiencies and launch overhead (sim/cost/roofline.hpp) and the peak of the model's dtype.
#pragma once
#include <cstdint>
#include <string>

#include "sim/config/json_reader.hpp"
#include "sim/cost/gpu_spec.hpp"

namespace tailsim {

enum class AttentionType { kGqa, kMla };

// A model's attention figures (configs/models/*.json, the "attention" object). GQA covers MHA (kv_heads =
// heads) and MQA (kv_heads = 1); MLA is DeepSeek's multi-head latent attention.
struct AttentionShape {
  AttentionType type = AttentionType::kGqa;
  std::int64_t heads = 0;             // query heads
  std::int64_t kv_heads = 0;          // GQA: key/value heads, dividing heads
  std::int64_t head_dim = 0;          // GQA: per head
  std::int64_t q_lora_rank = 0;       // MLA: query compression (its projections are in the dense GEMMs)
  std::int64_t kv_lora_rank = 0;      // MLA: the compressed latent per token (c)
  std::int64_t qk_nope_head_dim = 0;  // MLA: per-head key part without rotary embedding (n)
  std::int64_t qk_rope_head_dim = 0;  // MLA: rotary part, shared by the heads in the latent cache (r)
  std::int64_t v_head_dim = 0;        // MLA: per-head value (v)
};
AttentionShape parse_attention_shape(const JsonReader& node);

struct AttentionWork {
  double flops = 0;
  double bytes = 0;
};

// (query, key) pairs of `tokens` causal tokens in sequences of `prompt_length` (>= 1).
double causal_pairs(std::int64_t tokens, std::int64_t prompt_length);
// One layer's core attention on one GPU; bytes_per_element of the activations and KV cache.
AttentionWork prefill_attention(const AttentionShape& s, std::int64_t tokens, std::int64_t prompt_length,
                                double bytes_per_element);
AttentionWork decode_attention(const AttentionShape& s, double kv_entries, double bytes_per_element);

struct AttentionRoofline {
  double peak_flops = 0;             // effective FLOP/s, > 0
  double bandwidth_bytes_per_s = 0;  // effective HBM bandwidth, > 0
  double overhead_s = 0;             // one kernel launch
  double time_s(const AttentionWork& w) const;
};
// The default roofline's efficiencies on `gpu`, at the dtype's peak (BF16's where the GPU lacks that dtype).
AttentionRoofline attention_roofline(const GpuSpec& gpu, const std::string& dtype);

// The precision of core attention (its products and KV cache) in a model whose GEMMs run in `model_dtype`:
// FP8 models keep attention in BF16 (DeepSeek-V3 technical report, section 3.3: "attention operators" stay
// in BF16 or FP32; FlashMLA and FlashAttention-3 as deployed run BF16 with a BF16 cache); others their own.
std::string core_attention_dtype(const std::string& model_dtype);
inline constexpr double kCoreAttentionBytesPerElement = 2.0;  // BF16 or FP16

}  // namespace tailsim
