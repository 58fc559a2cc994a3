"""``python -m sngan_gluon.spectra_report``: a discriminator's layer sigmas and singular
value spectra.

Prints, for each layer of a checkpoint's discriminator, its sigma estimate (an
SN layer's: the sigma its next forward divides by; a plain layer's: power
iteration), the largest singular value of its raw weight by SVD, and the largest
of the matrix it applies (``W / sigma`` with SN: about 1); and plots each
layer's singular value spectrum into a PNG, beside a second run's with
``--compare`` (e.g. the same settings with ``--no-sn``).
"""
import os
import sys
from collections import OrderedDict

from ..errors import UserError
from . import checkpoint_parser, user_error


def build_parser():
    parser = checkpoint_parser("python -m sngan_gluon.spectra_report",
                               "Print a discriminator's layer sigmas and plot the singular "
                               "value spectrum of each layer.")
    parser.add_argument("--compare", default=None,
                        help="a second run or checkpoint (e.g. trained with --no-sn), printed "
                             "and plotted beside the first")
    parser.add_argument("--out", default="spectra.png",
                        help="the PNG to write (default: spectra.png in the current folder)")
    return parser


def _label(info):
    run = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(info["path"]))))
    return "%s (%s, iteration %d)" % (run, "SN" if info["sn"] else "no SN", info["iteration"])


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..sampling import check_output
    from ..spectra import describe_layers, format_table, layer_spectra, load_discriminator, \
        plot_spectra
    try:
        check_output(args.out, (".png",))
        spectra = OrderedDict()
        for checkpoint in filter(None, (args.checkpoint, args.compare)):
            net, info = load_discriminator(checkpoint)
            label = _label(info)
            if label in spectra:
                label += " [%s]" % checkpoint
            print("%s discriminator, %s (%s):" % (info["arch"], label, info["path"]))
            spectra[label] = layer_spectra(net)
            for line in format_table(describe_layers(net, spectra[label])):
                print("  " + line)
        plot_spectra(spectra, args.out, title="singular values of each layer's applied weight")
    except UserError as err:
        return user_error(err)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
