"""The zoo that `make zoo-check` exports from real MXNet 1.9.1 and checks Kiln against.

Each entry: (name, source, kind, input (C, H, W), extra get_model keyword arguments).
  source  "vision": mxnet.gluon.model_zoo.vision; "gluoncv": gluoncv.model_zoo
  kind    classify | detect | segment | pose | features: how the outputs are compared
          (detect: MXNet's final ids, scores and boxes, matched with a rule that handles ties)

Input sizes are the ones the models are used at (224 for ImageNet classifiers, 299 for the
Inception family), except where a smaller size keeps the check's run time reasonable on two cores
(segmentation at 320 instead of 480; detection at each network's own size).
"""

IMAGENET = (3, 224, 224)
INCEPTION = (3, 299, 299)

# (name, source, kind, input, kwargs)
MODELS = [
    # Gluon's vision zoo (mxnet.gluon.model_zoo.vision)
    ("alexnet", "vision", "classify", IMAGENET, {}),
    ("densenet121", "vision", "classify", IMAGENET, {}),
    ("densenet169", "vision", "classify", IMAGENET, {}),
    ("inceptionv3", "vision", "classify", INCEPTION, {}),
    ("mobilenet1.0", "vision", "classify", IMAGENET, {}),
    ("mobilenet0.5", "vision", "classify", IMAGENET, {}),
    ("mobilenetv2_1.0", "vision", "classify", IMAGENET, {}),
    ("mobilenetv2_0.5", "vision", "classify", IMAGENET, {}),
    ("resnet18_v1", "vision", "classify", IMAGENET, {}),
    ("resnet34_v1", "vision", "classify", IMAGENET, {}),
    ("resnet50_v1", "vision", "classify", IMAGENET, {}),
    ("resnet101_v1", "vision", "classify", IMAGENET, {}),
    ("resnet152_v1", "vision", "classify", IMAGENET, {}),
    ("resnet18_v2", "vision", "classify", IMAGENET, {}),
    ("resnet50_v2", "vision", "classify", IMAGENET, {}),
    ("resnet101_v2", "vision", "classify", IMAGENET, {}),
    ("squeezenet1.0", "vision", "classify", IMAGENET, {}),
    ("squeezenet1.1", "vision", "classify", IMAGENET, {}),
    ("vgg11", "vision", "classify", IMAGENET, {}),
    ("vgg11_bn", "vision", "classify", IMAGENET, {}),
    ("vgg16_bn", "vision", "classify", IMAGENET, {}),
    # GluonCV classification
    ("resnet18_v1b", "gluoncv", "classify", IMAGENET, {}),
    ("resnet50_v1b", "gluoncv", "classify", IMAGENET, {}),
    ("resnet50_v1c", "gluoncv", "classify", IMAGENET, {}),
    ("resnet50_v1d", "gluoncv", "classify", IMAGENET, {}),
    ("resnet50_v1s", "gluoncv", "classify", IMAGENET, {}),
    ("resnext50_32x4d", "gluoncv", "classify", IMAGENET, {}),
    ("se_resnet18_v1", "gluoncv", "classify", IMAGENET, {}),
    ("se_resnet50_v1", "gluoncv", "classify", IMAGENET, {}),
    ("se_resnext50_32x4d", "gluoncv", "classify", IMAGENET, {}),
    ("resnest50", "gluoncv", "classify", IMAGENET, {}),
    ("mobilenetv3_large", "gluoncv", "classify", IMAGENET, {}),
    ("mobilenetv3_small", "gluoncv", "classify", IMAGENET, {}),
    ("xception", "gluoncv", "classify", INCEPTION, {}),
    ("residualattentionnet56", "gluoncv", "classify", IMAGENET, {}),
    ("darknet53", "gluoncv", "classify", IMAGENET, {}),
    ("cifar_resnet20_v1", "gluoncv", "classify", (3, 32, 32), {}),
    ("cifar_wideresnet16_10", "gluoncv", "classify", (3, 32, 32), {}),
    # detection
    ("ssd_300_vgg16_atrous_voc", "gluoncv", "detect", (3, 300, 300), {"pretrained_base": False}),
    ("ssd_512_mobilenet1.0_voc", "gluoncv", "detect", (3, 512, 512), {"pretrained_base": False}),
    ("ssd_512_resnet50_v1_voc", "gluoncv", "detect", (3, 512, 512), {"pretrained_base": False}),
    ("yolo3_darknet53_voc", "gluoncv", "detect", (3, 416, 416), {"pretrained_base": False}),
    ("yolo3_mobilenet1.0_voc", "gluoncv", "detect", (3, 416, 416), {"pretrained_base": False}),
    ("center_net_resnet18_v1b_voc", "gluoncv", "detect", (3, 512, 512), {"pretrained_base": False}),
    ("faster_rcnn_resnet50_v1b_voc", "gluoncv", "detect", (3, 600, 600), {"pretrained_base": False}),
    # segmentation
    ("fcn_resnet50_voc", "gluoncv", "segment", (3, 320, 320), {"pretrained_base": False, "crop_size": 320}),
    ("psp_resnet50_ade", "gluoncv", "segment", (3, 320, 320), {"pretrained_base": False, "crop_size": 320}),
    ("deeplab_resnet50_ade", "gluoncv", "segment", (3, 320, 320), {"pretrained_base": False, "crop_size": 320}),
    # pose
    ("simple_pose_resnet18_v1b", "gluoncv", "pose", (3, 256, 192), {"pretrained_base": False}),
    ("simple_pose_resnet50_v1b", "gluoncv", "pose", (3, 256, 192), {"pretrained_base": False}),
]

# The short form CI runs (a few seconds each): one classifier of each structure the engine must
# take whole, and one detector.
QUICK = ["mobilenetv2_0.5", "se_resnet18_v1", "resnet18_v1b", "cifar_resnet20_v1"]
