// Straggler policies. A policy decides; workloads and the engine act. A policy belongs to one or more
// families, one per workload it serves, and gives that workload its own interface: bsp() the bulk-
// synchronous hooks (sim/policy/bsp_policy.hpp), moe() a factory of per-run MoE controllers
// (sim/policy/moe_policy.hpp). A workload asks only its own family's questions.
#pragma once
#include <memory>
#include <string>

#include "sim/config/registry.hpp"
#include "sim/policy/bsp_policy.hpp"
#include "sim/policy/moe_policy.hpp"

namespace tailsim {

struct EvictParams;

class Policy {
 public:
  Policy(std::string type, std::string label) : type_(std::move(type)), label_(std::move(label)) {}
  virtual ~Policy() = default;
  const std::string& type() const { return type_; }
  const std::string& label() const { return label_; }
  void set_label(std::string label) { label_ = std::move(label); }
  // Where the policy was defined, for errors found once the cluster is known.
  void set_origin(std::string file, std::string path) {
    file_ = std::move(file);
    path_ = std::move(path);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // The policy's hooks for the bsp workload, or null when it does not serve bsp.
  virtual const BspPolicy* bsp() const { return nullptr; }
  // The policy's controller factory for the moe workload, or null when it does not serve moe.
  virtual const MoePolicy* moe() const { return nullptr; }
  // The straggler detector's parameters (sim/policy/evict.hpp), or null when the policy does not evict.
  virtual const EvictParams* evict() const { return nullptr; }
  // Runs work beyond the primary tasks (copies, replicas), reported as extra_work_fraction.
  virtual bool copies_work() const { return false; }

 private:
  std::string type_;
  std::string label_;
  std::string file_;
  std::string path_;
};

using PolicyRegistry = Registry<Policy>;
const PolicyRegistry& policy_registry();
// Builds one policy (its "name" becomes the label; the default label is the type).
std::unique_ptr<Policy> make_policy(const JsonReader& node);

// The registered policies, exposed for their tests.
std::unique_ptr<Policy> make_none_policy(const JsonReader& node);
std::unique_ptr<Policy> make_backup_policy(const JsonReader& node);
std::unique_ptr<Policy> make_drop_slowest_policy(const JsonReader& node);
std::unique_ptr<Policy> make_capacity_drop_policy(const JsonReader& node);
std::unique_ptr<Policy> make_reroute_policy(const JsonReader& node);
std::unique_ptr<Policy> make_replicate_policy(const JsonReader& node);
std::unique_ptr<Policy> make_prefetch_policy(const JsonReader& node);
std::unique_ptr<Policy> make_evict_policy(const JsonReader& node);

}  // namespace tailsim
