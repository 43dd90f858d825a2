//! Convolution geometries: which sizes are accepted, at each limit and one step past it, and
//! the output sizes they give.

use vae::engine::{ConvGeometry, ConvTransposeGeometry};

#[test]
fn a_convolution_needs_channels_a_stride_and_a_kernel_that_fits_the_padded_input() {
    let base = ConvGeometry {
        in_channels: 1,
        out_channels: 2,
        kernel: 3,
        stride: 2,
        padding: 1,
        in_height: 5,
        in_width: 4,
    };
    assert!(base.is_valid());
    assert_eq!((base.out_height(), base.out_width()), (3, 2));
    // The kernel exactly as large as the padded input: one output position.
    let snug = ConvGeometry {
        in_height: 1,
        in_width: 1,
        ..base
    };
    assert!(snug.is_valid());
    assert_eq!((snug.out_height(), snug.out_width()), (1, 1));
    for broken in [
        ConvGeometry { in_channels: 0, ..base },
        ConvGeometry {
            out_channels: 0,
            ..base
        },
        ConvGeometry { kernel: 0, ..base },
        ConvGeometry { stride: 0, ..base },
        ConvGeometry {
            in_height: 1,
            padding: 0,
            ..base
        },
        ConvGeometry {
            in_width: 1,
            padding: 0,
            ..base
        },
    ] {
        assert!(!broken.is_valid(), "{broken:?}");
    }
    // The MNIST encoder's first layer: 28 -> 14.
    let mnist = ConvGeometry {
        in_height: 28,
        in_width: 28,
        ..base
    };
    assert_eq!((mnist.out_height(), mnist.out_width()), (14, 14));
}

#[test]
fn a_transposed_convolution_needs_output_padding_below_the_stride_and_a_positive_output() {
    let base = ConvTransposeGeometry {
        in_channels: 2,
        out_channels: 1,
        kernel: 3,
        stride: 2,
        padding: 1,
        output_padding: 1,
        in_height: 7,
        in_width: 5,
    };
    assert!(base.is_valid());
    // (H - 1)·s + k + output_padding - 2p: 7 -> 14, 5 -> 10.
    assert_eq!((base.out_height(), base.out_width()), (14, 10));
    // The smallest sizes: one input pixel through a 1x1 kernel, no padding, one output pixel.
    let smallest = ConvTransposeGeometry {
        kernel: 1,
        stride: 1,
        padding: 0,
        output_padding: 0,
        in_height: 1,
        in_width: 1,
        ..base
    };
    assert!(smallest.is_valid());
    assert_eq!((smallest.out_height(), smallest.out_width()), (1, 1));
    // Wide strides keep a wide output: (3 - 1)·2 + 1 + 1 = 6 columns, 2 left after padding 2.
    let strided = ConvTransposeGeometry {
        kernel: 1,
        padding: 2,
        in_height: 3,
        in_width: 3,
        ..base
    };
    assert!(strided.is_valid());
    assert_eq!((strided.out_height(), strided.out_width()), (2, 2));
    for broken in [
        ConvTransposeGeometry { in_channels: 0, ..base },
        ConvTransposeGeometry {
            out_channels: 0,
            ..base
        },
        ConvTransposeGeometry { kernel: 0, ..base },
        ConvTransposeGeometry {
            stride: 0,
            output_padding: 0,
            ..base
        },
        ConvTransposeGeometry { in_height: 0, ..base },
        ConvTransposeGeometry { in_width: 0, ..base },
        // Output padding must stay below the stride.
        ConvTransposeGeometry {
            output_padding: 2,
            ..base
        },
        // Nothing left of the rows, or of the columns, once the padding is taken off:
        // (2 - 1)·1 + 1 + 0 = 2 = 2p.
        ConvTransposeGeometry {
            stride: 1,
            kernel: 1,
            output_padding: 0,
            in_height: 2,
            ..base
        },
        ConvTransposeGeometry {
            stride: 1,
            kernel: 1,
            output_padding: 0,
            in_height: 9,
            in_width: 2,
            ..base
        },
    ] {
        assert!(!broken.is_valid(), "{broken:?}");
    }
}
