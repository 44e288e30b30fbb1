// Losses with their gradients, one workgroup per row of predictions [rows, cols]:
// row_loss[row] receives the row's loss and grad[row, :] its gradient times grad_scale (which
// the launcher sets to the mean or sum reduction's factor). KIND:
//   0 softmax cross-entropy, target = class index (as f32) per row;
//   1 squared error, target [rows, cols];
//   2 binary hinge max(0, 1 - t y), target [rows, cols] in {-1, 1};
//   3 multiclass margin (PyTorch's MultiMarginLoss, margin 1): sum over j != t of
//     max(0, 1 - y[t] + y[j]) / cols, target = class index per row.
// A class index that is not a whole number in [0, cols) gives its row a NaN loss and gradient
// (and no access outside the row), so that a caller's bad label cannot pass unnoticed.
// Cross-entropy keeps z = sum exp(y - max) as its parts (see softmax.wgsl), so that a confident
// row's small loss log1p(z - 1) and its true class's gradient -(z - 1) / z keep their digits.
// Concatenated after workgroup_reduce.wgsl and log1p.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    grad_scale: f32,
    nan_bits: u32, // a quiet NaN, which WGSL cannot write as a constant
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> labels_or_targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

// Whether row's class index is a whole number below cols (u32() saturates, and f32(cols) could
// round down past 2^24).
fn valid_class(row: u32) -> bool {
    let t = labels_or_targets[row];
    return t >= 0.0 && t == floor(t) && u32(t) < params.cols;
}

@compute @workgroup_size(256)
fn loss(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    let s = params.grad_scale;
    var acc = 0.0;
    if (KIND == 0u) {
        let valid = valid_class(row);
        let label = select(0u, u32(labels_or_targets[row]), valid);
        let nan = bitcast<f32>(params.nan_bits);
        var m = -3.4028235e38;
        for (var j = lid; j < params.cols; j += 256u) {
            m = max(m, pred[base + j]);
        }
        m = workgroup_reduce(1u, m, lid);
        var ties = 0.0;
        var rest = 0.0;
        for (var j = lid; j < params.cols; j += 256u) {
            let shifted = pred[base + j] - m;
            ties += select(0.0, 1.0, shifted == 0.0);
            rest += select(exp(shifted), 0.0, shifted == 0.0);
        }
        ties = workgroup_reduce(0u, ties, lid);
        rest = workgroup_reduce(0u, rest, lid);
        let z = ties + rest;
        let zm1 = (ties - 1.0) + rest;
        for (var j = lid; j < params.cols; j += 256u) {
            let shifted = pred[base + j] - m;
            let p = exp(shifted) / z;
            // At the maximum p - 1 = (1 - z) / z, without the cancellation.
            let g = select(p, select(p - 1.0, -zm1 / z, shifted == 0.0), j == label);
            grad[base + j] = select(nan, g * s, valid);
        }
        if (lid == 0u) {
            row_loss[row] = select(nan, log1p_acc(zm1) + (m - pred[base + label]), valid);
        }
        return;
    }
    if (KIND == 3u) {
        let valid = valid_class(row);
        let label = select(0u, u32(labels_or_targets[row]), valid);
        let nan = bitcast<f32>(params.nan_bits);
        let y_t = pred[base + label];
        var hinge_count = 0.0;
        for (var j = lid; j < params.cols; j += 256u) {
            // y_j - y_t first: 1 - y_t would drop the 1 once |y_t| passes 2^24.
            let margin = 1.0 + (pred[base + j] - y_t);
            // A NaN margin (a NaN score) makes the loss, the count and so every gradient NaN.
            let hinged = j != label && (margin > 0.0 || is_nan(margin));
            acc += select(0.0, margin, hinged);
            hinge_count += select(0.0, select(1.0, margin, is_nan(margin)), hinged);
            // The true class's entry is lid 0's to write, below: workgroup barriers do not
            // order two invocations' stores to storage memory.
            if (j != label) {
                let g = select(0.0, s / f32(params.cols), hinged);
                grad[base + j] = select(nan, select(g, margin, is_nan(margin)), valid);
            }
        }
        let total = workgroup_reduce(0u, acc, lid);
        let count = workgroup_reduce(0u, hinge_count, lid);
        if (lid == 0u) {
            row_loss[row] = select(nan, total / f32(params.cols), valid);
            // Every active margin pulls the true class's score up.
            grad[base + label] = select(nan, -count * s / f32(params.cols), valid);
        }
        return;
    }
    for (var j = lid; j < params.cols; j += 256u) {
        let y = pred[base + j];
        let t = labels_or_targets[base + j];
        if (KIND == 1u) {
            let d = y - t;
            acc += d * d;
            grad[base + j] = 2.0 * d * s;
        } else {
            let margin = 1.0 - t * y;
            // max would drop a NaN margin; it is passed on to the loss and the gradient.
            acc += select(max(margin, 0.0), margin, is_nan(margin));
            grad[base + j] = select(select(0.0, -t * s, margin > 0.0), margin, is_nan(margin));
        }
    }
    let total = workgroup_reduce(0u, acc, lid);
    if (lid == 0u) {
        row_loss[row] = total;
    }
}
