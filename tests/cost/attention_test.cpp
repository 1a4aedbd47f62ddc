// Core attention FLOPs and bytes (sim/cost/attention.hpp) against hand computations for small shapes, its
// roofline time, and the attention object's validation.
#include "sim/cost/attention.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "sim/config/error.hpp"
#include "tests/cost/cost_helpers.hpp"

namespace tailsim {

namespace {

AttentionShape gqa(std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim) {
  AttentionShape s;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = head_dim;
  return s;
}

AttentionShape deepseek_mla() {
  AttentionShape s;
  s.type = AttentionType::kMla;
  s.heads = 128;
  s.q_lora_rank = 1536;
  s.kv_lora_rank = 512;
  s.qk_nope_head_dim = 128;
  s.qk_rope_head_dim = 64;
  s.v_head_dim = 128;
  return s;
}

}  // namespace

TEST_CASE("causal prefill attends to L (L + 1) / 2 pairs per sequence, the last sequence shorter") {
  CHECK(causal_pairs(10, 4) == 23.0);  // sequences of 4, 4 and 2 tokens: 10 + 10 + 3
  CHECK(causal_pairs(4096, 4096) == 4096.0 * 4097.0 / 2.0);
  CHECK(causal_pairs(16384, 4096) == 4.0 * 4096.0 * 4097.0 / 2.0);
  CHECK(causal_pairs(3, 4096) == 6.0);  // fewer tokens than a prompt: one short sequence
}

TEST_CASE("GQA prefill: 4 h d FLOPs per pair, Q, K, V and O moved once") {
  // Mixtral's attention (32 heads, 8 KV heads, head_dim 128), 10 tokens in prompts of 4: 23 pairs.
  const AttentionWork w = prefill_attention(gqa(32, 8, 128), 10, 4, 2.0);
  CHECK(w.flops == 4.0 * 32 * 128 * 23);  // 376,832
  CHECK(w.bytes ==
        (2.0 * 32 * 128 + 2.0 * 8 * 128) * 10 * 2);  // (8192 + 2048) x 10 tokens x 2 bytes = 204,800
  CHECK(w.flops == 376832.0);
  CHECK(w.bytes == 204800.0);
}

TEST_CASE("GQA decode reads the KV cache once: 2 g d bytes and 4 h d FLOPs per KV entry") {
  const AttentionWork w = decode_attention(gqa(32, 8, 128), 1000.0, 2.0);
  CHECK(w.flops == 16384000.0);  // 4 x 32 x 128 x 1000
  CHECK(w.bytes == 4096000.0);   // 2 x 8 x 128 x 1000 x 2 bytes
}

TEST_CASE("MLA prefill (not absorbed) uses per-head keys of nope + rope and values of v_head_dim") {
  // DeepSeek-V3: 128 heads, keys 128 + 64 = 192, values 128; 3 tokens in one sequence: 6 pairs; FP8 (1 byte).
  const AttentionWork w = prefill_attention(deepseek_mla(), 3, 3, 1.0);
  CHECK(w.flops == 2.0 * 128 * 192 * 6 + 2.0 * 128 * 128 * 6);  // 294,912 + 196,608
  CHECK(w.flops == 491520.0);
  CHECK(w.bytes == (2.0 * 192 + 2.0 * 128) * 128 * 3);  // Q, K (192) and V, O (128) per head and token
  CHECK(w.bytes == 245760.0);
}

TEST_CASE("MLA absorbed decode works in the latent space and reads only the compressed cache") {
  // One request over 4,096 KV entries: scores over kv_lora + rope = 576, values over kv_lora = 512.
  const AttentionWork w = decode_attention(deepseek_mla(), 4096.0, 1.0);
  CHECK(w.flops == 2.0 * 128 * 576 * 4096 + 2.0 * 128 * 512 * 4096);
  CHECK(w.flops == 1140850688.0);
  CHECK(w.bytes == 576.0 * 4096);  // 2,359,296: the latent and the shared rotary key, once for all heads
}

TEST_CASE("attention time is the launch overhead plus the larger of the two roofline terms") {
  const GpuSpec h100 = test::gpu_spec("h100-sxm");
  const AttentionRoofline roof = attention_roofline(h100, "bf16");
  CHECK(roof.peak_flops == h100.peak_flops_bf16 * 0.75);
  CHECK(roof.bandwidth_bytes_per_s == h100.memory_bandwidth_bytes_per_s * 0.85);
  CHECK(roof.overhead_s == 8e-6);
  const AttentionWork decode = decode_attention(gqa(32, 8, 128), 128.0 * 4096.0, 2.0);  // memory bound
  CHECK(roof.time_s(decode) == 8e-6 + decode.bytes / roof.bandwidth_bytes_per_s);
  const AttentionWork prefill = prefill_attention(gqa(32, 8, 128), 4096, 4096, 2.0);  // compute bound
  CHECK(roof.time_s(prefill) == 8e-6 + prefill.flops / roof.peak_flops);
  CHECK(roof.time_s(AttentionWork{}) == 0.0);
  CHECK(attention_roofline(h100, "fp8").peak_flops == h100.peak_flops_fp8 * 0.75);
}

TEST_CASE("bad attention figures name their JSON path") {
  auto error = [](const Json& j) {
    try {
      parse_attention_shape(JsonReader(j, "m.json", "/attention"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(Json{{"type", "gqa"}, {"heads", 32}, {"kv_heads", 8}, {"head_dim", 128}}) == "no error");
  CHECK(error(Json{{"type", "gqa"}, {"heads", 32}, {"kv_heads", 6}, {"head_dim", 128}})
            .find("/attention/kv_heads: expected a divisor of heads (32), got 6") != std::string::npos);
  CHECK(error(Json{{"type", "gqa"}, {"heads", 32}, {"kv_heads", 64}, {"head_dim", 128}})
            .find("/attention/kv_heads") != std::string::npos);
  CHECK(error(Json{{"type", "mha"}, {"heads", 32}}).find("/attention/type") != std::string::npos);
  CHECK(error(Json{{"type", "mla"},
                   {"heads", 128},
                   {"kv_lora_rank", 512},
                   {"qk_nope_head_dim", 128},
                   {"qk_rope_head_dim", 64},
                   {"v_head_dim", 128},
                   {"head_dim", 128}})
            .find("/attention: unknown key 'head_dim'") != std::string::npos);
}

}  // namespace tailsim
