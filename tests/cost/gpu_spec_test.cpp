// The GPU files of configs/gpus/ and inline GPU objects: every shipped file parses with sourced figures,
// the host link is read in bytes/s of one direction, and missing keys are named all at once.
#include <doctest/doctest.h>

#include <string>

#include "sim/config/error.hpp"
#include "sim/cost/gpu_spec.hpp"
#include "tests/cost/cost_helpers.hpp"

namespace tailsim {

namespace {

// An inline GPU object with every key, `edit` applied (a key set to null is removed).
Json inline_gpu(const Json& edit = Json::object()) {
  Json g = {{"name", "test-gpu"},        {"sm_count", 100},
            {"boost_clock_mhz", 1500},   {"memory", "80GB"},
            {"memory_bandwidth", "2TB/s"}, {"peak_tflops", {{"fp16", 500}, {"bf16", 500}}},
            {"nvlink_bandwidth", "600GB/s"}, {"source", "made up for a test"}};
  for (auto it = edit.begin(); it != edit.end(); ++it) {
    if (it.value().is_null()) g.erase(it.key());
    else g[it.key()] = it.value();
  }
  return g;
}

GpuSpec parse(const Json& g) { return parse_gpu_spec(JsonReader(g, "test.json", "/gpu")); }

std::string message(const Json& g) {
  try {
    parse(g);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every shipped GPU file parses, with a host link and the datasheet it comes from") {
  const std::vector<std::string> names = gpu_names();
  for (const std::string want : {"a100-sxm-80gb", "b200", "h100-sxm", "h20", "h200", "h800", "mi300x"})
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  for (const std::string& name : names) {
    INFO(name);
    const GpuSpec g = test::gpu_spec(name);
    CHECK(g.name == name);
    CHECK(g.host_link_bandwidth_bytes_per_s >= 32e9);  // PCIe Gen4 x16 or faster, one direction
    CHECK(g.host_link_bandwidth_bytes_per_s < g.nvlink_bandwidth_bytes_per_s);
    CHECK(g.source.find("host link") != std::string::npos);
    const bool sourced = g.source.find("datasheet") != std::string::npos ||
                         g.source.find("product brief") != std::string::npos || g.source.find("HGX H20") != std::string::npos;
    CHECK(sourced);
  }
}

TEST_CASE("the B200 and MI300X files hold the dense datasheet figures") {
  const GpuSpec b200 = test::gpu_spec("b200");
  CHECK(b200.peak_flops_bf16 == doctest::Approx(2250e12));
  CHECK(b200.peak_flops_fp8 == doctest::Approx(4500e12));
  CHECK(b200.memory_bytes == doctest::Approx(180e9));
  CHECK(b200.memory_bandwidth_bytes_per_s == doctest::Approx(8e12));
  CHECK(b200.nvlink_bandwidth_bytes_per_s == doctest::Approx(1.8e12));
  CHECK(b200.host_link_bandwidth_bytes_per_s == doctest::Approx(64e9));
  const GpuSpec mi300x = test::gpu_spec("mi300x");
  CHECK(mi300x.sm_count == 304);
  CHECK(mi300x.peak_flops_fp16 == doctest::Approx(1307.4e12));
  CHECK(mi300x.peak_flops_fp8 == doctest::Approx(2614.9e12));
  CHECK(mi300x.memory_bytes == doctest::Approx(192e9));
  CHECK(mi300x.memory_bandwidth_bytes_per_s == doctest::Approx(5.3e12));
  CHECK(mi300x.nvlink_bandwidth_bytes_per_s == doctest::Approx(896e9));
  CHECK(mi300x.host_link_bandwidth_bytes_per_s == doctest::Approx(64e9));
}

TEST_CASE("host_link_bandwidth is bytes/s of one direction, optional, and refused without a known unit") {
  CHECK(parse(inline_gpu({{"host_link_bandwidth", "64GB/s"}})).host_link_bandwidth_bytes_per_s == doctest::Approx(64e9));
  CHECK(parse(inline_gpu({{"host_link_bandwidth", "256Gbps"}})).host_link_bandwidth_bytes_per_s == doctest::Approx(32e9));
  CHECK(parse(inline_gpu()).host_link_bandwidth_bytes_per_s == 0);
  CHECK(message(inline_gpu({{"host_link_bandwidth", "64 GB"}})).find("/gpu/host_link_bandwidth: unknown unit 'GB'") !=
        std::string::npos);
  CHECK(message(inline_gpu({{"host_link_bandwidth", "0GB/s"}})).find("/gpu/host_link_bandwidth: expected a bandwidth") !=
        std::string::npos);
}

TEST_CASE("an inline GPU object missing several keys names every one of them in one error") {
  CHECK(message(inline_gpu({{"sm_count", nullptr}, {"memory", nullptr}, {"source", nullptr}})) ==
        "test.json: /gpu: missing required keys 'sm_count', 'memory', 'source'");
  // A near miss among the keys is pointed out with them.
  CHECK(message(inline_gpu({{"sm_count", nullptr}, {"memory", nullptr}, {"memroy", "80GB"}})) ==
        "test.json: /gpu: missing required keys 'sm_count', 'memory'; unknown key 'memroy' (did you mean 'memory'?)");
  // One missing key is reported as before, with its typo hint.
  CHECK(message(inline_gpu({{"memory", nullptr}})) == "test.json: /gpu: missing required key 'memory'");
  CHECK(message(inline_gpu({{"memory", nullptr}, {"memroy", "80GB"}})) ==
        "test.json: /gpu: unknown key 'memroy' (did you mean 'memory'?); 'memory' is required");
}

TEST_CASE("a peak_tflops object without fp16 says fp16 is missing, not that bf16 is unknown") {
  CHECK(message(inline_gpu({{"peak_tflops", {{"bf16", 500}}}})) ==
        "test.json: /gpu/peak_tflops: missing required key 'fp16'");
  CHECK(message(inline_gpu({{"peak_tflops", {{"fp8", 900}}}})) ==
        "test.json: /gpu/peak_tflops: missing required keys 'fp16', 'bf16'");
  CHECK(message(inline_gpu({{"peak_tflops", {{"fp16", 500}, {"bf61", 500}}}})) ==
        "test.json: /gpu/peak_tflops: unknown key 'bf61' (did you mean 'bf16'?); 'bf16' is required");
}

}  // namespace tailsim
