// crash_cycle: what the store must hold. Each file (an inode, with one or
// more names) has a committed state, recorded after the durability point
// (fsync of the file, and of the directory for name changes), and at most
// one pending change, recorded before the change starts. After a crash the
// verifier accepts either and adopts what it finds. Every record is also
// appended to the journal in the work directory (plain write(): only the
// daemon is killed, never this process), one line per event with the
// inode's whole state, so a kept work directory can be read afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tools/crash_cycle_content.h"

namespace crash_cycle {

enum class Variant { kTmpRename, kAppend, kTruncate, kPunch, kLink, kXattr, kJunk, kRotate };
const char* VariantName(Variant v);
std::optional<Variant> ParseVariant(const std::string& name);

struct Xattr {
  uint64_t seed = 0;
  uint32_t len = 0;
  std::string Value() const;
  bool operator==(const Xattr&) const = default;
};

struct FileState {
  Content content;
  std::optional<Xattr> xattr;  // user.k
  std::string Encode() const;
};

// A change in progress. `state` is the intended state (the committed one for
// name-only changes); `add_name` is a new name (tmp-rename target, hard link),
// `remove_name` a name being unlinked (rotation).
struct Pending {
  Variant variant = Variant::kTmpRename;
  unsigned cycle = 0;
  FileState state;
  std::string add_name;
  std::string remove_name;
  std::string how;  // how the change is made (temp name, write sizes), for the journal and reports
};

struct Inode {
  uint64_t id = 0;
  bool born = false;  // committed at least once
  FileState committed;
  std::vector<std::string> names;  // committed names, oldest first
  std::optional<Pending> pending;
  bool busy = false;  // a writer holds it (until the next verification once a pending is left)
  Variant made_by = Variant::kTmpRename;
  unsigned made_cycle = 0;
  Variant last_by = Variant::kTmpRename;
  unsigned last_cycle = 0;
  std::string how;  // how its data was last written (Pending::how)
  std::string History() const;  // "made by tmp-rename in cycle 3, last change append in cycle 5"
};

// A writer's hold on an inode: a copy of what it needs to work on it.
struct Lease {
  uint64_t id = 0;
  std::string name;  // one committed name
  FileState state;   // the committed state
};

class Model {
 public:
  explicit Model(const std::string& journal_path);  // throws if the journal cannot be created
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // --- used by writers (thread-safe) ---
  // A random committed inode nobody holds, or nullopt.
  std::optional<Lease> AcquireRandom(std::mt19937_64& rng);
  // The inode of the oldest name nobody holds, with that name.
  std::optional<Lease> AcquireOldest();
  // A new inode with the pending creation of `name`; returns its id.
  uint64_t BeginCreate(const std::string& name, FileState state, unsigned cycle, std::string how);
  void SetPending(uint64_t id, Pending p);
  // The pending change is durable: it becomes the committed state.
  void Commit(uint64_t id);
  // Nothing was changed (no pending was set): give the inode back.
  void Release(uint64_t id);
  // Where a seed's data was meant to go (for loss reports).
  void NoteSeed(uint64_t seed, const std::string& where);
  std::string SeedOwner(uint64_t seed) const;
  // A free-form line in the journal.
  void Note(const std::string& line);
  // The cycle that journal lines are stamped with.
  void set_cycle(unsigned cycle);

  // --- used by the verifier, with no writer running ---
  std::vector<Inode> Snapshot() const;
  // Replaces an inode's state after verification (busy and pending cleared),
  // or drops it when it has no names left.
  void Resolve(const Inode& resolved, const std::string& event);
  // Removes a lost inode (its names stay on the store for inspection).
  void Forget(uint64_t id, const std::string& event);
  uint64_t committed_bytes() const;

 private:
  void Journal(const char* event, const Inode& ino);  // with mu_ held
  void WriteLine(std::string line);                   // with mu_ held
  void Erase(uint64_t id);                            // with mu_ held
  void AddName(Inode& ino, const std::string& name);  // with mu_ held
  void RemoveName(Inode& ino, const std::string& name);

  mutable std::mutex mu_;
  int journal_fd_ = -1;
  unsigned cycle_ = 0;
  uint64_t next_id_ = 1;
  uint64_t next_name_seq_ = 1;
  std::map<uint64_t, Inode> inodes_;
  std::vector<uint64_t> born_ids_;                 // for random picks
  std::map<uint64_t, size_t> born_index_;          // id -> index in born_ids_
  std::map<uint64_t, std::string> names_by_age_;   // creation sequence -> name
  std::map<std::string, std::pair<uint64_t, uint64_t>> names_;  // name -> (inode, sequence)
  std::map<uint64_t, std::string> seed_owner_;
};

}  // namespace crash_cycle
