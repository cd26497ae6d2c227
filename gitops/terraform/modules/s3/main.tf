# S3 for product images and static objects, and as the storage of Loki and Tempo (design sections
# 5, 10 and 11). Every bucket is private, encrypted and versioned; traffic from the private subnets
# reaches S3 through a gateway VPC endpoint, never through NAT.

resource "aws_s3_bucket" "this" {
  for_each = var.buckets

  bucket = "${var.name}-${each.key}"

  tags = merge(var.tags, { purpose = each.key })
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = var.buckets

  bucket = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = var.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = var.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = var.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Versioning keeps overwritten objects; the lifecycle rule bounds what that costs.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = var.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = each.value.expire_days > 0 ? [each.value.expire_days] : []

    content {
      id     = "expire-current"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids

  tags = merge(var.tags, { Name = "${var.name}-s3" })
}

data "aws_iam_policy_document" "pod_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "pod_writer" {
  for_each = var.pod_writers

  name               = "${var.cluster_name}-${each.key}-s3"
  assume_role_policy = data.aws_iam_policy_document.pod_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "pod_writer" {
  for_each = var.pod_writers

  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this[each.value.bucket].arn]
  }

  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.this[each.value.bucket].arn}/*"]
  }
}

resource "aws_iam_role_policy" "pod_writer" {
  for_each = var.pod_writers

  name   = "s3-${each.value.bucket}"
  role   = aws_iam_role.pod_writer[each.key].id
  policy = data.aws_iam_policy_document.pod_writer[each.key].json
}

resource "aws_eks_pod_identity_association" "pod_writer" {
  for_each = var.pod_writers

  cluster_name    = var.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.pod_writer[each.key].arn

  tags = var.tags
}
