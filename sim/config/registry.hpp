// Registry<T>: builds plug-ins by their JSON "type" name. Each entry has a one-line description and the
// parameters it reads (for `tailsim list`); an unknown name is an error listing the valid ones.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"

namespace tailsim {

struct ParamDoc {
  std::string name;
  std::string help;  // meaning, unit, default and range
};

template <class T, class... Context>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<T>(const JsonReader&, Context...)>;
  struct Entry {
    std::string name;
    std::string description;
    std::vector<ParamDoc> params;
    Factory factory;
  };

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  void add(std::string name, std::string description, std::vector<ParamDoc> params, Factory factory) {
    entries_.push_back(Entry{std::move(name), std::move(description), std::move(params), std::move(factory)});
  }

  const Entry* find(const std::string& name) const {
    for (const Entry& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }

  // Reads node's "type", builds the object (the factory reads the other keys), then rejects unread keys.
  std::unique_ptr<T> build(const JsonReader& node, Context... context) const {
    node.expect_object();
    const std::string type = node.string("type", std::nullopt, names());
    std::unique_ptr<T> built = find(type)->factory(node, context...);
    node.finish();
    return built;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Entry& e : entries_) out.push_back(e.name);
    return out;
  }
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  std::vector<Entry> entries_;
};

}  // namespace tailsim
