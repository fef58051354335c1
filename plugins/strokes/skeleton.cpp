// Zhang–Suen thinning, staircase removal and stroke tracing (see skeleton.h).
//
// A pixel's 8 neighbours are numbered clockwise from the top: 0 N, 1 NE, 2 E, 3 SE, 4 S, 5 SW, 6 W,
// 7 NW, and bit k of its neighbourhood code is set when neighbour k is ink. Everything that depends
// only on the code (Zhang–Suen's deletion tests, Yokoi's connectivity number, the grouping of the
// neighbours into branches) is looked up in tables made once.
#include "skeleton.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <opencv2/imgproc.hpp>

namespace bpkit_strokes {

namespace {

constexpr uint8_t kEnd = 1, kJunction = 2;  // node kinds (Stroke::front, back)
constexpr int kDx[8] = {0, 1, 1, 1, 0, -1, -1, -1};
constexpr int kDy[8] = {-1, -1, 0, 1, 1, 1, 0, -1};

int bit(int code, int k) {
  return (code >> (k & 7)) & 1;
}

struct CodeTables {
  // Zhang–Suen with Lü and Wang's correction (a pixel needs 3 to 6 ink neighbours, not 2 to 6, to
  // be deleted, which keeps 2-pixel-thick diagonal strokes from being eaten from their ends):
  // deletable in the first / second sub-iteration.
  std::array<uint8_t, 256> zs1{}, zs2{};
  // Yokoi's 8-connectivity number: 1 for a simple point (deleting it changes neither the ink's
  // components nor its holes).
  std::array<uint8_t, 256> yokoi{};
  std::array<uint8_t, 256> count{};
  // The crossing number: paper-to-ink transitions around the ring, the number of branches that
  // meet at the pixel (2 on a curve, 3 or more at a junction).
  std::array<uint8_t, 256> runs{};
  // The branch (0..3, a run of consecutive ink neighbours) of each neighbour; -1 for paper.
  std::array<std::array<int8_t, 8>, 256> group{};

  CodeTables() {
    for (int c = 0; c < 256; ++c) {
      int b = 0, a = 0;
      for (int k = 0; k < 8; ++k) {
        b += bit(c, k);
        a += !bit(c, k) && bit(c, k + 1);
      }
      count[size_t(c)] = uint8_t(b);
      runs[size_t(c)] = uint8_t(a);
      const int p2 = bit(c, 0), p4 = bit(c, 2), p6 = bit(c, 4), p8 = bit(c, 6);
      const bool base = b >= 3 && b <= 6 && a == 1;
      zs1[size_t(c)] = base && !(p2 && p4 && p6) && !(p4 && p6 && p8);
      zs2[size_t(c)] = base && !(p2 && p4 && p8) && !(p2 && p6 && p8);
      int n8 = 0;
      for (int k = 0; k < 8; k += 2) {
        const int x0 = 1 - bit(c, k), x1 = 1 - bit(c, k + 1), x2 = 1 - bit(c, k + 2);
        n8 += x0 - x0 * x1 * x2;
      }
      yokoi[size_t(c)] = uint8_t(n8);
      // Branches: runs of consecutive ink neighbours around the ring (a full ring is one).
      int start = 0;
      while (start < 8 && bit(c, start)) ++start;  // a paper neighbour, if any, to start after
      int id = -1;
      for (int i = 1; i <= 8; ++i) {
        const int k = (start + i) % 8;
        if (!bit(c, k)) {
          group[size_t(c)][size_t(k)] = -1;
          continue;
        }
        if (!bit(c, k + 7)) ++id;  // the previous neighbour is paper: a new run
        group[size_t(c)][size_t(k)] = int8_t(std::max(0, id));
      }
    }
  }
};

const CodeTables& tables() {
  static const CodeTables t;
  return t;
}

// A 0/1 image with a one-pixel border of paper, so that neighbours need no bounds checks.
struct Padded {
  cv::Mat m;  // CV_8UC1
  int stride = 0;
  std::array<int, 8> offset{};

  explicit Padded(const cv::Mat& src) {
    cv::Mat bin = src != 0;
    cv::copyMakeBorder(bin / 255, m, 1, 1, 1, 1, cv::BORDER_CONSTANT, 0);
    stride = int(m.step[0]);
    for (int k = 0; k < 8; ++k) offset[size_t(k)] = kDy[k] * stride + kDx[k];
  }
  uint8_t* data() { return m.data; }
  int code(int idx) const {
    const uint8_t* p = m.data + idx;
    int c = 0;
    for (int k = 0; k < 8; ++k) c |= int(p[offset[size_t(k)]] != 0) << k;
    return c;
  }
  cv::Point point(int idx) const { return {idx % stride - 1, idx / stride - 1}; }
  int index(cv::Point p) const { return (p.y + 1) * stride + p.x + 1; }
};

}  // namespace

cv::Mat thin(const cv::Mat& ink) {
  const CodeTables& t = tables();
  Padded pad(ink);
  uint8_t* img = pad.data();
  std::vector<int> alive;
  for (int y = 1; y + 1 < pad.m.rows; ++y)
    for (int x = 1; x + 1 < pad.m.cols; ++x)
      if (img[y * pad.stride + x]) alive.push_back(y * pad.stride + x);

  // Zhang–Suen: two parallel sub-iterations (decide on the whole image, then delete) until stable.
  // Only the ink pixels are visited: the list shrinks as the strokes thin.
  std::vector<int> del;
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto* table : {&t.zs1, &t.zs2}) {
      del.clear();
      for (int idx : alive)
        if ((*table)[size_t(pad.code(idx))]) del.push_back(idx);
      for (int idx : del) img[idx] = 0;
      if (!del.empty()) {
        changed = true;
        alive.erase(std::remove_if(alive.begin(), alive.end(), [&](int i) { return !img[i]; }),
                    alive.end());
      }
    }
  }
  // Staircases and thick spots: delete the simple points with three or more neighbours, one at a
  // time (sequential deletion of simple points keeps the topology), until none is left. Pixels
  // with two neighbours stay: they are corners or the ends of strokes, and deleting an end that
  // way would eat a 2-pixel-thick diagonal stroke pixel after pixel.
  for (bool changed = true; changed;) {
    changed = false;
    for (int idx : alive) {
      if (!img[idx]) continue;
      const int c = pad.code(idx);
      if (t.count[size_t(c)] >= 3 && t.yokoi[size_t(c)] == 1) {
        img[idx] = 0;
        changed = true;
      }
    }
  }
  cv::Mat skel = pad.m(cv::Rect(1, 1, ink.cols, ink.rows)).clone();

  // Components that lost every pixel (Zhang–Suen erases 2x2 blocks) get one back.
  cv::Mat labels, stats, centroids;
  const cv::Mat bin = ink != 0;
  const int n = cv::connectedComponentsWithStats(bin, labels, stats, centroids, 8, CV_32S);
  std::vector<uint8_t> kept(size_t(n), 0);
  for (int y = 0; y < skel.rows; ++y) {
    const uint8_t* s = skel.ptr<uint8_t>(y);
    const int* l = labels.ptr<int>(y);
    for (int x = 0; x < skel.cols; ++x)
      if (s[x]) kept[size_t(l[x])] = 1;
  }
  for (int c = 1; c < n; ++c) {
    if (kept[size_t(c)]) continue;
    const cv::Rect box(stats.at<int>(c, cv::CC_STAT_LEFT), stats.at<int>(c, cv::CC_STAT_TOP),
                       stats.at<int>(c, cv::CC_STAT_WIDTH), stats.at<int>(c, cv::CC_STAT_HEIGHT));
    const double cx = centroids.at<double>(c, 0), cy = centroids.at<double>(c, 1);
    cv::Point best(-1, -1);
    double best_d = 1e300;
    for (int y = box.y; y < box.y + box.height; ++y)
      for (int x = box.x; x < box.x + box.width; ++x) {
        if (labels.at<int>(y, x) != c) continue;
        const double d = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        if (d < best_d) best_d = d, best = {x, y};
      }
    if (best.x >= 0) skel.at<uint8_t>(best) = 1;
  }
  return skel;
}

SkeletonGraph trace_strokes(const cv::Mat& skeleton, int merge) {
  const CodeTables& t = tables();
  Padded pad(skeleton);
  const uint8_t* img = pad.data();
  SkeletonGraph g;
  cv::Mat node_pad = cv::Mat::zeros(pad.m.size(), CV_8U), visited = node_pad.clone();
  uint8_t* node = node_pad.data;
  uint8_t* seen = visited.data;
  std::vector<int> pixels, junction_pixels;
  for (int y = 1; y + 1 < pad.m.rows; ++y)
    for (int x = 1; x + 1 < pad.m.cols; ++x) {
      const int idx = y * pad.stride + x;
      if (!img[idx]) continue;
      const int c = pad.code(idx);
      const int b = t.count[size_t(c)];
      if (b == 0) {
        ++g.dots;
        seen[idx] = 1;
      } else if (t.runs[size_t(c)] == 1 && b <= 2) {  // one neighbour, or two side by side
        ++g.ends;
        node[idx] = kEnd;
      } else if (t.runs[size_t(c)] >= 3) {
        node[idx] = kJunction;
        junction_pixels.push_back(idx);
      }
      pixels.push_back(idx);
    }
  // Junctions: 8-connected clusters of junction pixels count once.
  std::vector<int> cluster(pad.m.total(), -1);
  int clusters = 0;
  {
    std::vector<int> stack;
    for (int start : junction_pixels) {
      if (cluster[size_t(start)] >= 0) continue;
      stack.assign(1, start);
      cluster[size_t(start)] = clusters;
      while (!stack.empty()) {
        const int idx = stack.back();
        stack.pop_back();
        for (int k = 0; k < 8; ++k) {
          const int m = idx + pad.offset[size_t(k)];
          if (node[m] == kJunction && cluster[size_t(m)] < 0) {
            cluster[size_t(m)] = clusters;
            stack.push_back(m);
          }
        }
      }
      ++clusters;
    }
  }

  // The neighbour of `cur` to go to next, coming from `prev`: one in a group (branch) other than
  // prev's, a node first (the stroke ends there), else an unvisited pixel, 4-neighbours before
  // diagonal ones. -1 when there is none.
  auto next_of = [&](int cur, int prev, int start) {
    const int c = pad.code(cur);
    int back = -1;
    for (int k = 0; k < 8; ++k)
      if (cur + pad.offset[size_t(k)] == prev) back = t.group[size_t(c)][size_t(k)];
    int best = -1, best_rank = 4;
    for (int k = 0; k < 8; ++k) {
      const int grp = t.group[size_t(c)][size_t(k)];
      if (grp < 0 || grp == back) continue;
      const int m = cur + pad.offset[size_t(k)];
      int rank;
      if (node[m] || m == start)
        rank = k % 2;  // a node (or the start of a closed curve): end here
      else if (!seen[m])
        rank = 2 + k % 2;
      else
        continue;
      if (rank < best_rank) best_rank = rank, best = m;
    }
    return best;
  };
  auto walk = [&](int start, int first, bool closed_curve) {
    Stroke s;
    s.points.push_back(pad.point(start));
    int prev = start, cur = first;
    const size_t limit = pixels.size() + 2;
    while (s.points.size() <= limit) {
      s.points.push_back(pad.point(cur));
      if (node[cur] || (closed_curve && cur == start)) break;
      seen[cur] = 1;
      const int nxt = next_of(cur, prev, closed_curve ? start : -1);
      if (nxt < 0) break;
      prev = cur;
      cur = nxt;
    }
    if (closed_curve && s.points.size() > 2 && s.points.back() == s.points.front()) {
      s.points.pop_back();
      s.closed = true;
    }
    if (!s.closed) {
      s.front = node[start];
      s.back = node[pad.index(s.points.back())];
    }
    if (s.points.size() >= 2) g.strokes.push_back(std::move(s));
  };
  // Strokes from the nodes, then the closed curves that have none.
  for (int idx : pixels) {
    if (!node[idx]) continue;
    for (int k = 0; k < 8; ++k) {
      const int m = idx + pad.offset[size_t(k)];
      if (img[m] && !node[m] && !seen[m]) {
        walk(idx, m, false);
      } else if (node[m] && (node[idx] == kEnd || node[m] == kEnd) && idx < m) {
        // Two nodes side by side, one of them an end: a one-pixel spur or a two-pixel stroke.
        Stroke s;
        s.points = {pad.point(idx), pad.point(m)};
        s.front = node[idx];
        s.back = node[m];
        g.strokes.push_back(std::move(s));
      }
    }
  }
  for (int idx : pixels) {
    if (seen[idx] || node[idx]) continue;
    seen[idx] = 1;
    const int c = pad.code(idx);
    int first = -1;
    for (int k = 0; k < 8 && first < 0; ++k)
      if (t.group[size_t(c)][size_t(k)] >= 0 && !seen[idx + pad.offset[size_t(k)]])
        first = idx + pad.offset[size_t(k)];
    if (first < 0) continue;
    walk(idx, first, true);
  }
  // Clusters joined by a stroke of at most `merge` pixels are one junction (a thick crossing
  // thins into two forks a few pixels apart).
  std::vector<int> parent(static_cast<size_t>(clusters));
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int c) {
    while (parent[size_t(c)] != c) c = parent[size_t(c)] = parent[size_t(parent[size_t(c)])];
    return c;
  };
  g.junctions = clusters;
  // End pixels of dots, each taken off the end count once: a tiny blob thins to a few pixels whose
  // pixels may all count as ends (one neighbour, or two side by side), shared by several short
  // strokes, or be the same pixel at both ends of a one-pixel stroke.
  std::vector<int> dot_ends;
  for (const Stroke& s : g.strokes) {
    // A stroke no longer than `merge` between two ends is a dot (a small blob thins to a short
    // stroke).
    if (s.front == kEnd && s.back == kEnd && int(s.points.size()) <= merge + 1) {
      dot_ends.push_back(pad.index(s.points.front()));
      dot_ends.push_back(pad.index(s.points.back()));
      ++g.dots;
      continue;
    }
    if (s.closed || int(s.points.size()) > merge + 1) continue;
    const int a = cluster[size_t(pad.index(s.points.front()))];
    const int b = cluster[size_t(pad.index(s.points.back()))];
    if (a < 0 || b < 0 || find(a) == find(b)) continue;
    parent[size_t(find(a))] = find(b);
    --g.junctions;
  }
  std::sort(dot_ends.begin(), dot_ends.end());
  dot_ends.erase(std::unique(dot_ends.begin(), dot_ends.end()), dot_ends.end());
  for (int idx : dot_ends) g.ends -= node[idx] == kEnd;
  g.node = node_pad(cv::Rect(1, 1, skeleton.cols, skeleton.rows)).clone();
  return g;
}

void prune_spurs(cv::Mat& skeleton, int max_length) {
  for (int round = 0; round < 3; ++round) {
    const SkeletonGraph g = trace_strokes(skeleton);
    bool changed = false;
    for (const Stroke& s : g.strokes) {
      const bool spur =
          (s.front == kEnd && s.back == kJunction) || (s.front == kJunction && s.back == kEnd);
      if (!spur || int(s.points.size()) > max_length + 1) continue;
      // Everything but the junction's pixel.
      const size_t from = s.front == kEnd ? 0 : 1,
                   to = s.front == kEnd ? s.points.size() - 1 : s.points.size();
      for (size_t i = from; i < to; ++i) skeleton.at<uint8_t>(s.points[i]) = 0;
      changed = true;
    }
    if (!changed) break;
  }
}

double stroke_slant(const std::vector<Stroke>& strokes, int step) {
  step = std::max(1, step);
  double sx = 0, sy = 0;
  for (const Stroke& s : strokes) {
    const int n = int(s.points.size());
    const int last = s.closed ? n : n - step;
    for (int i = 0; i < last; ++i) {
      const cv::Point d = s.points[size_t((i + step) % n)] - s.points[size_t(i)];
      if (std::abs(d.y) <= std::abs(d.x)) continue;
      sx += d.y > 0 ? d.x : -d.x;
      sy += std::abs(d.y);
    }
  }
  return sy > 0 ? -sx / sy : 0.0;
}

}  // namespace bpkit_strokes
