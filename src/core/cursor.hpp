#pragma once
// SMC ring cursors (docs/wire-format.md): a position is (wrap, count) with count < ring size and a
// 16-bit wrap counter that may roll over. Cursors written by a peer are validated before use:
// a peer can never move a cursor backwards or more than one ring ahead.
#include <cstdint>
#include <optional>

namespace shunt {

struct Cursor {
    uint16_t wrap = 0;
    uint32_t count = 0;
    bool operator==(const Cursor&) const = default;
};

// n <= size.
constexpr Cursor cursor_add(Cursor c, uint32_t n, uint32_t size) {
    c.count += n;
    if (c.count >= size) {
        ++c.wrap;
        c.count -= size;
    }
    return c;
}

// Bytes from `from` forward to `to`, or nullopt if `to` is not within one ring ahead of `from`.
constexpr std::optional<uint32_t> cursor_distance(Cursor from, Cursor to, uint32_t size) {
    if (from.count >= size || to.count >= size) return std::nullopt;
    if (to.wrap == from.wrap) {
        if (to.count < from.count) return std::nullopt;
        return to.count - from.count;
    }
    if (static_cast<uint16_t>(from.wrap + 1) == to.wrap && to.count <= from.count)
        return size - from.count + to.count;
    return std::nullopt;
}

}  // namespace shunt
