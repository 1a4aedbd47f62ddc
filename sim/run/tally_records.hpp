// A run's MoE and what-if sums (sim/workload/workload.hpp: MoeTally, WhatIfTally) as the fields of its
// record (runner.hpp: MoeRecord, WhatIfRecord): means, rates and ratios, each left out where nothing was
// counted.
#pragma once
#include "sim/run/runner.hpp"

namespace tailsim {

MoeRecord moe_record(const MoeTally& m);
// Slowdowns are ratios of mean step times, as the StragglerAnalysis artifact computes them.
WhatIfRecord whatif_record(const WhatIfTally& w);

}  // namespace tailsim
