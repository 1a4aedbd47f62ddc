// MPI for distributed sweeps (built only where CMake finds MPI: option TAILSIM_MPI). Under mpirun every
// rank runs its share of the (point, replication) units and rank 0 writes the results; see Distributor.
#pragma once
#include <memory>

#include "sim/run/runner.hpp"

namespace tailsim {

// Initializes MPI and returns a distributor over MPI_COMM_WORLD when this process was started by an MPI
// launcher (mpirun, srun, mpiexec: their environment variables say so); null otherwise, without touching
// MPI, so a plain `tailsim run` never depends on an MPI runtime being set up.
std::unique_ptr<Distributor> mpi_distributor_if_launched(int* argc, char*** argv);

// Ends the whole job with `code` (a failure on one rank must not leave the others waiting).
void mpi_abort(int code);

}  // namespace tailsim
