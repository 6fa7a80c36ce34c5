export { REPORT_FILE, apiReport, exportedNames, publishedPackages, type PublishedPackage } from "./report.js";
export { changesetForLastReportChange, frontmatterNames, type ChangesetVerdict } from "./changeset.js";
