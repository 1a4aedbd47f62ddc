// `tailsim cost`: the service time of one expert FFN against tokens, for a GPU and an MoE model from
// configs/, under each cost-model kind, with the analytical kinds' error against the measured table.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace tailsim {

// tailsim cost --gpu NAME --model NAME [--tokens LIST] [--format table|csv] [--table FILE] [--cost JSON]
// writes the table (or CSV: kind,tokens,time_us) to `out` and returns 0; throws InputError on bad input.
int verb_cost(const std::vector<std::string>& args, std::ostream& out);

}  // namespace tailsim
