output "zone_id" {
  description = "ID of the hosted zone."
  value       = data.aws_route53_zone.this.zone_id
}

output "certificate_arn" {
  description = "ARN of the validated certificate (apex and wildcard)."
  value       = aws_acm_certificate_validation.this.certificate_arn
}
