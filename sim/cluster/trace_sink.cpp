#include "sim/cluster/trace_sink.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "sim/config/error.hpp"

namespace tailsim {

namespace {

void append_integer(std::string& out, std::int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// Shortest form that reads back to the same double; JSON has no infinities or NaN: those are null.
void append_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

// Integer nanoseconds as exact microseconds with three decimals: Perfetto reads them back to the nanosecond.
void append_us(std::string& out, SimTime ns) {
  if (ns < 0) {
    out += '-';
    ns = -ns;
  }
  append_integer(out, ns / 1000);
  const auto frac = static_cast<int>(ns % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
}

void append_key(std::string& out, std::string_view key) {
  if (!out.empty()) out += ',';
  append_string(out, key);
  out += ':';
}

}  // namespace

TraceArgs& TraceArgs::add_integer(std::string_view key, std::int64_t value) {
  append_key(members_, key);
  append_integer(members_, value);
  return *this;
}

TraceArgs& TraceArgs::add(std::string_view key, double value) {
  append_key(members_, key);
  append_double(members_, value);
  return *this;
}

TraceArgs& TraceArgs::add(std::string_view key, std::string_view value) {
  append_key(members_, key);
  append_string(members_, value);
  return *this;
}

TraceArgs& TraceArgs::flag(std::string_view key) {
  append_key(members_, key);
  members_ += "true";
  return *this;
}

TraceSink::TraceSink(std::int64_t max_events) : max_events_(max_events), doc_("{\"traceEvents\": [") {}

void TraceSink::begin_event() {
  if (++events_ > max_events_)
    throw InputError(
        "", "--trace-steps",
        "the trace holds more than " + std::to_string(max_events_) + " events; trace fewer steps or points");
  doc_ += events_ == 1 ? "\n" : ",\n";
}

void TraceSink::metadata(std::string_view kind, std::int64_t tid, std::string_view name,
                         std::int64_t sort_index) {
  const bool thread = tid > 0;
  for (int pass = 0; pass < 2; ++pass) {
    begin_event();
    doc_ += "{\"ph\":\"M\",\"pid\":";
    append_integer(doc_, pid_);
    if (thread) {
      doc_ += ",\"tid\":";
      append_integer(doc_, tid);
    }
    doc_ += ",\"name\":\"";
    doc_ += kind;
    if (pass == 0) {
      doc_ += "_name\",\"args\":{\"name\":";
      append_string(doc_, name);
    } else {
      doc_ += "_sort_index\",\"args\":{\"sort_index\":";
      append_integer(doc_, sort_index);
    }
    doc_ += "}}";
  }
}

void TraceSink::begin_point(std::string title) {
  point_title_ = std::move(title);
}

void TraceSink::begin_process(std::string_view policy_label) {
  ++pid_;
  tracks_in_process_ = 0;
  metadata(
      "process", 0,
      point_title_.empty() ? std::string(policy_label) : point_title_ + " | " + std::string(policy_label),
      pid_);
}

std::int64_t TraceSink::add_track(std::string_view name) {
  const std::int64_t tid = next_tid_++;
  metadata("thread", tid, name, tracks_in_process_++);
  return tid;
}

std::int64_t TraceSink::add_gpu_tracks(std::span<const WorkerGroup> groups, std::string_view port) {
  const std::int64_t first = next_tid_;
  for (const WorkerGroup& g : groups) {
    std::string mark;
    if (port.empty() && g.factor != 1.0) {
      mark = " (slow x";
      append_double(mark, g.factor);
      mark += ')';
    }
    for (std::int64_t k = g.first; k < g.first + g.count; ++k)
      add_track("GPU " + std::to_string(k) + (port.empty() ? mark : " " + std::string(port)));
  }
  return first;
}

void TraceSink::slice(std::int64_t track, std::string_view name, SimTime start_ns, SimTime end_ns,
                      const TraceArgs& args) {
  if (end_ns <= start_ns) return;
  begin_event();
  doc_ += "{\"ph\":\"X\",\"pid\":";
  append_integer(doc_, pid_);
  doc_ += ",\"tid\":";
  append_integer(doc_, track);
  doc_ += ",\"ts\":";
  append_us(doc_, start_ns);
  doc_ += ",\"dur\":";
  append_us(doc_, end_ns - start_ns);
  doc_ += ",\"name\":";
  append_string(doc_, name);
  if (!args.members().empty()) {
    doc_ += ",\"args\":{";
    doc_ += args.members();
    doc_ += '}';
  }
  doc_ += '}';
}

std::string TraceSink::finish(const Json& metadata) {
  doc_ += "\n],\n\"displayTimeUnit\": \"ns\",\n\"metadata\": ";
  doc_ += metadata.dump();
  doc_ += "\n}\n";
  std::string out = std::move(doc_);
  *this = TraceSink(max_events_);
  return out;
}

}  // namespace tailsim
