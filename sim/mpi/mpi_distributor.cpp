#include "sim/mpi/mpi_distributor.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include <mpi.h>

namespace tailsim {

namespace {

constexpr std::size_t kChunk = std::size_t{1} << 30;  // MPI counts are ints: move big buffers in pieces

void send_bytes(const std::string& bytes, int to) {
  const std::uint64_t size = bytes.size();
  MPI_Send(&size, 1, MPI_UINT64_T, to, 0, MPI_COMM_WORLD);
  for (std::size_t off = 0; off < bytes.size(); off += kChunk)
    MPI_Send(bytes.data() + off, static_cast<int>(std::min(kChunk, bytes.size() - off)), MPI_BYTE, to, 1, MPI_COMM_WORLD);
}

std::string recv_bytes(int from) {
  std::uint64_t size = 0;
  MPI_Recv(&size, 1, MPI_UINT64_T, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  std::string bytes(size, '\0');
  for (std::size_t off = 0; off < bytes.size(); off += kChunk)
    MPI_Recv(bytes.data() + off, static_cast<int>(std::min<std::size_t>(kChunk, bytes.size() - off)), MPI_BYTE, from, 1,
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return bytes;
}

class MpiDistributor final : public Distributor {
 public:
  MpiDistributor() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiDistributor() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void broadcast(std::string& bytes) override {
    std::uint64_t size = bytes.size();
    MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    bytes.resize(size);
    for (std::size_t off = 0; off < bytes.size(); off += kChunk)
      MPI_Bcast(bytes.data() + off, static_cast<int>(std::min(kChunk, bytes.size() - off)), MPI_BYTE, 0, MPI_COMM_WORLD);
  }

  std::vector<std::string> gather(const std::string& bytes) override {
    if (rank_ != 0) {
      send_bytes(bytes, 0);
      return {};
    }
    std::vector<std::string> all(static_cast<std::size_t>(size_));
    all[0] = bytes;
    for (int r = 1; r < size_; ++r) all[static_cast<std::size_t>(r)] = recv_bytes(r);
    return all;
  }

 private:
  int rank_ = 0, size_ = 1;
};

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(var)) return true;
  return false;
}

}  // namespace

std::unique_ptr<Distributor> mpi_distributor_if_launched(int* argc, char*** argv) {
  if (!launched_by_mpi()) return nullptr;
  MPI_Init(argc, argv);
  return std::make_unique<MpiDistributor>();
}

void mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

}  // namespace tailsim
