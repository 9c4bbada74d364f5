#pragma once
// While shunt itself runs inside the preload (a handshake, a connection's data path), the
// socket calls it makes must reach the C library untouched: they come back through our own
// interposed symbols, and the guard sends them straight on. It is per thread, so another
// thread of the application is still served.
namespace shunt::preload {

[[gnu::tls_model("initial-exec")]] inline thread_local int inside_shunt = 0;

class InsideShunt {
public:
    InsideShunt() { ++inside_shunt; }
    ~InsideShunt() { --inside_shunt; }
    InsideShunt(const InsideShunt&) = delete;
    InsideShunt& operator=(const InsideShunt&) = delete;
};

// Keeps errno as the application last saw it unless the call sets it on purpose.
class SavedErrno {
public:
    SavedErrno();
    ~SavedErrno();
    SavedErrno(const SavedErrno&) = delete;
    SavedErrno& operator=(const SavedErrno&) = delete;

private:
    int saved_;
};

}  // namespace shunt::preload
