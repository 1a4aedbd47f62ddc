// The `trace` router: replays per-layer, per-step expert counts from a wide CSV file (docs/routing.md).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/workload/routing_models.hpp"

namespace tailsim {

namespace {

// A non-negative decimal integer, nothing else (no sign, no fraction, no exponent).
std::optional<std::uint64_t> parse_count(std::string_view field) {
  if (field.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec != std::errc() || ptr != field.data() + field.size()) return std::nullopt;
  return v;
}

std::string in_quotes(std::string_view s) { return quote_input(s); }

}  // namespace

RoutingTrace read_routing_trace(const std::string& path, int layers, int experts) {
  std::istringstream in(read_text_file(path, "trace file"));
  return parse_routing_trace(in, path, layers, experts);
}

RoutingTrace parse_routing_trace(std::istream& in, const std::string& path, int layers, int experts) {
  if (layers < 1 || experts < 1)
    throw std::invalid_argument("parse_routing_trace: the model must have layers and experts");
  const auto fail = [&](int line_no, const std::string& message) -> void {
    throw InputError(path, "line " + std::to_string(line_no), message);
  };
  RoutingTrace t;
  t.layers = layers;
  t.experts = experts;
  const std::size_t width = 2 + static_cast<std::size_t>(experts);
  const std::string shape = "step, layer and " + std::to_string(experts) + " expert columns e0..e" +
                            std::to_string(experts - 1);
  std::string line;
  int line_no = 0, last_line = 0;
  bool header = false;
  std::int64_t rows = 0;
  std::vector<std::string_view> fields;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string_view body = trim_blanks(line);
    if (body.empty() || body[0] == '#') continue;
    last_line = line_no;
    fields = split_csv_fields(body);
    if (!header) {
      header = true;
      if (fields.size() < 2 || fields[0] != "step" || fields[1] != "layer")
        fail(line_no, "expected the header 'step,layer,e0,...,e" + std::to_string(experts - 1) + "', got " +
                          in_quotes(body));
      if (fields.size() != width)
        fail(line_no, "the header has " + std::to_string(fields.size() - 2) + " expert columns, the model has " +
                          std::to_string(experts) + " experts (expected " + shape + ")");
      for (std::size_t i = 2; i < width; ++i)
        if (fields[i] != "e" + std::to_string(i - 2))
          fail(line_no, "column " + std::to_string(i + 1) + " is " + in_quotes(fields[i]) + ", expected 'e" +
                            std::to_string(i - 2) + "'");
      continue;
    }
    if (fields.size() != width)
      fail(line_no, "expected " + std::to_string(width) + " fields (" + shape + "), got " +
                        std::to_string(fields.size()));
    const auto step = parse_count(fields[0]);
    const auto layer = parse_count(fields[1]);
    if (!step) fail(line_no, "step: expected a non-negative integer, got " + in_quotes(fields[0]));
    if (!layer) fail(line_no, "layer: expected a non-negative integer, got " + in_quotes(fields[1]));
    const std::int64_t want_step = rows / layers, want_layer = rows % layers;
    if (*layer >= static_cast<std::uint64_t>(layers))
      fail(line_no, "layer " + std::to_string(*layer) + " is out of range: the model has " + std::to_string(layers) +
                        " MoE layers (0.." + std::to_string(layers - 1) + ")");
    if (static_cast<std::int64_t>(*step) != want_step || static_cast<std::int64_t>(*layer) != want_layer) {
      if (static_cast<std::int64_t>(*step) == want_step + 1 && *layer == 0 && want_layer > 0)
        fail(line_no, "step " + std::to_string(want_step) + " has " + std::to_string(want_layer) +
                          " layers, the model has " + std::to_string(layers) + " MoE layers");
      fail(line_no, "expected step " + std::to_string(want_step) + " layer " + std::to_string(want_layer) + ", got step " +
                        std::to_string(*step) + " layer " + std::to_string(*layer) +
                        " (one row per step and layer: steps 0, 1, ... in order, layers 0.." +
                        std::to_string(layers - 1) + " within each step)");
    }
    std::int64_t total = 0;
    for (std::size_t i = 2; i < width; ++i) {
      const auto c = parse_count(fields[i]);
      if (!c) fail(line_no, "e" + std::to_string(i - 2) + ": expected a non-negative integer count, got " + in_quotes(fields[i]));
      if (*c > 0xFFFFFFFFull) fail(line_no, "e" + std::to_string(i - 2) + ": count " + std::string(fields[i]) + " is above 2^32 - 1");
      t.counts.push_back(static_cast<std::uint32_t>(*c));
      total += static_cast<std::int64_t>(*c);
    }
    if (total == 0) fail(line_no, "the counts of step " + std::to_string(want_step) + " layer " +
                                      std::to_string(want_layer) + " sum to 0 (each row must route some tokens)");
    t.totals.push_back(total);
    ++rows;
  }
  if (!header) throw InputError(path, "", "the trace is empty (expected a header 'step,layer,e0,...' and rows)");
  if (rows == 0) throw InputError(path, "", "the trace has a header but no rows");
  if (rows % layers != 0)
    fail(last_line, "the file ends inside step " + std::to_string(rows / layers) + ", after " +
                        std::to_string(rows % layers) + " of its " + std::to_string(layers) + " layers");
  t.steps = rows / layers;
  return t;
}

void cap_and_spread(std::int64_t cap, std::span<std::int64_t> counts) {
  std::int64_t excess = 0, room = 0;
  for (std::int64_t& c : counts) {
    if (c > cap) {
      excess += c - cap;
      c = cap;
    }
    room += cap - c;
  }
  if (excess == 0) return;
  if (room < excess) throw std::logic_error("cap_and_spread: the counts do not fit under the cap");
  // Cumulative rounding of excess * room_e / room: sums to excess exactly, each share within 1 of exact.
  std::int64_t cum_room = 0, given = 0;
  for (std::int64_t& c : counts) {
    const std::int64_t r = cap - c;
    cum_room += r;
    const auto upto = static_cast<std::int64_t>(
        std::floor(static_cast<double>(excess) * (static_cast<double>(cum_room) / static_cast<double>(room)) + 0.5));
    const std::int64_t add = std::clamp<std::int64_t>(upto - given, 0, r);
    c += add;
    given += add;
  }
  for (std::int64_t& c : counts) {  // floating-point leftovers, if any
    const std::int64_t add = std::min(excess - given, cap - c);
    c += add;
    given += add;
  }
}

TraceRouter::TraceRouter(std::shared_ptr<const RoutingTrace> trace, const RouterContext& context,
                         double gate_concentration)
    : trace_(std::move(trace)),
      context_(context),
      gates_("TraceRouter", gate_concentration, context),
      gate_concentration_(gate_concentration) {
  if (trace_->layers != context.layers || trace_->experts != context.experts)
    throw std::invalid_argument("TraceRouter: the trace's shape differs from the model's");
}

void TraceRouter::route(std::int64_t step, int layer, std::int64_t tokens, std::span<std::int64_t> counts) {
  const auto experts = static_cast<std::size_t>(trace_->experts);
  if (layer < 0 || layer >= trace_->layers || counts.size() != experts || tokens < 0)
    throw std::invalid_argument("TraceRouter::route: layer " + std::to_string(layer) + " of " +
                                std::to_string(trace_->layers) + ", counts.size() " + std::to_string(counts.size()) +
                                " for " + std::to_string(experts) + " experts, tokens " + std::to_string(tokens));
  const std::int64_t s = ((step % trace_->steps) + trace_->steps) % trace_->steps;
  const std::size_t row = static_cast<std::size_t>(s) * static_cast<std::size_t>(trace_->layers) + static_cast<std::size_t>(layer);
  const std::uint32_t* src = &trace_->counts[row * experts];
  const std::int64_t total = trace_->totals[row];
  const std::int64_t target = tokens * context_.top_k;
  if (target == total) {
    for (std::size_t e = 0; e < experts; ++e) counts[e] = src[e];
  } else {
    std::int64_t cum = 0, given = 0;
    const double scale = static_cast<double>(target);
    for (std::size_t e = 0; e < experts; ++e) {
      cum += src[e];
      const auto upto = static_cast<std::int64_t>(
          std::floor(scale * (static_cast<double>(cum) / static_cast<double>(total)) + 0.5));
      counts[e] = upto - given;
      given = upto;
    }
  }
  cap_and_spread(tokens, counts);
  gates_.remember(counts);
}

void TraceRouter::gate_scores(int expert, std::span<double> scores) { gates_.draw(expert, scores); }

}  // namespace tailsim
