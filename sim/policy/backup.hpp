// `backup` on the moe workload (sim/policy/backup_moe.cpp): hedging straggling GPUs' expert work onto GPUs
// that hold copies of their experts. The bsp side and the parsing are in sim/policy/backup.cpp.
#pragma once
#include <memory>
#include <optional>

#include "sim/policy/moe_policy.hpp"

namespace tailsim {

class Policy;

// The moe side's parameters, read by make_backup_policy.
struct BackupMoeParams {
  int copies = 2;                  // fixed form: must be 2 on moe (one copy of each known slow GPU)
  std::optional<double> quantile;  // trigger form: Spark's quorum
  double multiplier = 1.5;         // trigger form: slow beyond multiplier x the median finish
  std::optional<int> backup_slots;  // standby expert copies per GPU; default: the experts one GPU hosts
  bool next_node = false;           // backup_on "next_node": copies on the next nodes first (else the GPU's own node)
};

// The standby slots of a run: backup_slots, or by default one GPU's experts (ceil(E / K)) when K <= E and 0
// (the placement's replicas serve) when K > E.
int backup_slots_of(const BackupMoeParams& p, const MoeRunInfo& shape);
// Fails (Policy::fail, with the key's path) when the moe side cannot run on the shape.
void check_backup_moe(const Policy& policy, const BackupMoeParams& p, const MoeRunInfo& shape);
std::unique_ptr<MoeController> make_backup_controller(const BackupMoeParams& p, const MoeRunInfo& info);

}  // namespace tailsim
