#pragma once
// Reporting for training scripts: a progress bar on a terminal stream, and the learning curve
// as CSV and as an SVG plot a person can open in a browser.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace tapegrad::nn {

// "epoch 3/15 [#########.........] 412/938 loss 0.3127 1830 img/s", redrawn in place with '\r'.
class ProgressBar {
public:
    ProgressBar(std::string label, int64_t total, std::ostream& os);
    // Redraws at most ten times a second, and always for the last step.
    void update(int64_t done, const std::string& status);
    // Ends the line.
    void finish(const std::string& status);

private:
    void draw(int64_t done, const std::string& status);
    std::string label_;
    int64_t total_;
    std::ostream& os_;
    std::chrono::steady_clock::time_point last_draw_{};
};

struct EpochRecord {
    int64_t epoch = 0;
    double train_loss = 0;
    double test_accuracy = 0;
    double seconds = 0;
};

// "epoch,train_loss,test_accuracy,seconds" then one row per epoch.
void write_curve_csv(const std::string& path, const std::vector<EpochRecord>& records);
// Reads what write_curve_csv wrote (to continue a curve on resume); throws std::runtime_error on
// a malformed file.
std::vector<EpochRecord> read_curve_csv(const std::string& path);
// Training loss (left axis) and test accuracy (right axis) against epochs.
void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& records, const std::string& title);

}  // namespace tapegrad::nn
