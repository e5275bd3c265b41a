// Placeholder until the page cache lands: every data operation is unimplemented.
#include "fs/file_data.h"

namespace reclaimfs::fs {

struct FileData::Impl {};

FileData::FileData(storage::MetaStore*, storage::Allocator*, storage::BlockDevice*, reclaim::MemoryManager*,
                   InodeRecordSource*, FileDataOptions)
    : impl_(std::make_unique<Impl>()) {}
FileData::~FileData() = default;
absl::Status FileData::Start() { return absl::OkStatus(); }
absl::Status FileData::Shutdown() { return absl::OkStatus(); }
absl::StatusOr<size_t> FileData::Read(uint64_t, uint64_t, uint64_t, size_t, char*) { return absl::UnimplementedError("read"); }
absl::Status FileData::Write(uint64_t, uint64_t, uint64_t, const char*, size_t) { return absl::UnimplementedError("write"); }
absl::Status FileData::Truncate(uint64_t, uint64_t, uint64_t) { return absl::OkStatus(); }
absl::Status FileData::PunchHole(uint64_t, uint64_t, uint64_t, uint64_t) { return absl::UnimplementedError("punch"); }
absl::Status FileData::Preallocate(uint64_t, uint64_t, uint64_t) { return absl::UnimplementedError("falloc"); }
absl::Status FileData::Sync(uint64_t, bool) { return absl::OkStatus(); }
absl::Status FileData::SyncAll() { return absl::OkStatus(); }
absl::StatusOr<uint64_t> FileData::SeekData(uint64_t, uint64_t, uint64_t off) { return off; }
absl::StatusOr<uint64_t> FileData::SeekHole(uint64_t, uint64_t size, uint64_t) { return size; }
uint64_t FileData::AllocatedSectors(uint64_t) { return 0; }
absl::Status FileData::Evict(uint64_t, bool) { return absl::OkStatus(); }
absl::Status FileData::Deallocate(uint64_t, storage::MetaStore::Batch*) { return absl::OkStatus(); }
std::string FileData::StatsText() const { return {}; }
uint64_t FileData::page_size() const { return 4096; }

}  // namespace reclaimfs::fs
