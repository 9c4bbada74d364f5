// fork: the child inherits every connection of the parent.
//
// The rings are shared memory, so after fork both processes hold the same end of each
// connection. The usual patterns work: the parent closes its copy and the child serves it
// (inetd, PostgreSQL), or the child never touches it (a worker forked before accept, like
// nginx; a child that execs). The last process to let go closes the connection: each
// connection counts its holders in its own shared meta page, and close() in a process that
// is not the last one only detaches (no close flag, no FIN). Both processes *using* one
// connection at the same time is not supported (the ring is single-producer,
// single-consumer), as with Linux SMC's own socket sharing caveats.
//
// The parent lists the child as a holder before fork() returns to it, and the child lists
// itself too (whichever runs first): a parent that closes its copy at once (inetd, socat's
// fork option) must never find itself the last holder and close the connection under the child.
//
// The child also gets its own stats region, so `shunt stat` shows its pid for the
// connections it carries.
#include <pthread.h>

#include <set>

#include "lo/stats_region.hpp"
#include "preload/guard.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

void prepare() { FdTable::instance().lock_for_fork(); }
void parent() { FdTable::instance().unlock_in_parent(); }
void child() {
    FdTable& t = FdTable::instance();
    auto all = t.snapshot_locked();
    t.reinit_in_child();
    InsideShunt guard;
    lo::StatsRegion::instance().reset_after_fork();
    std::set<lo::Connection*> seen;
    for (auto& [fd, tracked] : all) {
        auto* s = dynamic_cast<SocketState*>(tracked.get());
        if (!s || !s->conn || !seen.insert(s->conn.get()).second) continue;
        if (s->smcd) s->conn->add_holder();
        s->conn->rehome_stats();
    }
}

}  // namespace

void install_fork_handlers() { ::pthread_atfork(prepare, parent, child); }

pid_t on_fork() {
    const pid_t pid = libc().fork();
    if (pid <= 0) return pid;
    InsideShunt guard;
    std::set<lo::Connection*> seen;
    for (auto& [fd, tracked] : FdTable::instance().snapshot()) {
        auto* s = dynamic_cast<SocketState*>(tracked.get());
        if (s && s->smcd && seen.insert(s->smcd).second) s->smcd->add_holder(pid);
    }
    return pid;
}

}  // namespace shunt::preload
